//! One network element serving any number of SIP sessions, each run by its
//! own [`Node`], sharing the element's SIP flows and its MSRP [`Links`]
//! (msrp-core's endpoint: one framer per link, frames routed by To-Path,
//! links reused by scheme, host, port and transport, writes paced by a
//! window; RFC 4975 s.5.4; seed 000 paragraph 0040: "a creator selects an
//! existing MSRP link with a matched host, port and/or MSRP URI").
//!
//! - SIP is routed by Call-ID: an INVITE of an unknown Call-ID without a To
//!   tag starts a new session; any other request of an unknown Call-ID is
//!   answered here, statelessly, and holds no session place (OPTIONS as an
//!   INVITE would be, 405, 501, 481; RFC 3261 s.8.2.1, s.9.2, s.11.2,
//!   s.12.2.2); a response of an unknown Call-ID is dropped (s.18.1.2: no
//!   transaction matches it).
//! - MSRP: every frame goes to the session whose URI is the first of its
//!   To-Path (s.5.4, s.7.2: responses too); a request for no session is
//!   answered 481. A hop that is to connect reuses a link this element
//!   opened to the same [`LinkKey`](msrp_core::link::LinkKey) when
//!   [`EntityConfig::reuse_links`] is on ([`Event::LinkReused`]); the link
//!   closes when the last hop on it lets go (until then
//!   [`Event::LinkReleased`]). The runtime acknowledges written bytes
//!   ([`Input::MsrpWritten`]); a relay whose members have more than
//!   [`EntityConfig::relay_window`] bytes queued stops reading upstream
//!   ([`Output::PauseReading`]) until half of it is written.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Instant;

use cpm_negotiation::Trigger;
use msrp_core::link::{self, EndpointConfig};
use sip_lite::ids::stateless_tag;
use sip_lite::sip::{self, Message};
use sip_lite::ua::response;

use crate::config::{entity_capabilities, EntityConfig, RETRY_AFTER};
use crate::error::{PeerError, UsageError};
use crate::ids::{ConnId, DeliveryId, FlowId, SessionId, SharedIds};
use crate::links::{Connecting, Links};
use crate::node::{Node, Role, Step, Work};
use crate::stats::Stats;
use crate::{Command, Event, Input, Output};

/// A session's slot: its creation number, never reused.
type Slot = SessionId;

/// The sessions of one element and what they share.
pub(crate) struct Server {
    config: EntityConfig,
    role: Role,
    ids: SharedIds,
    sessions: BTreeMap<Slot, Node>,
    next_inbound: u64,
    calls: HashMap<String, Slot>,
    links: Links,
    /// IWF: each hand-over waiting for [`Input::NonCpmAck`], by the element's
    /// id, with its session and that session's own id for it.
    deliveries: HashMap<DeliveryId, (Slot, DeliveryId)>,
    next_delivery: u64,
    stats: Stats,
    /// Held and queued bytes of each session at its last drain, and their sums.
    buffered: HashMap<Slot, (usize, usize)>,
    buffered_total: (usize, usize),
    /// Relays holding their upstream link's reading back, with that link
    /// (their members' queues passed [`EntityConfig::relay_window`]).
    holding: Vec<(Slot, ConnId)>,
    /// Work for sessions produced while handling their outputs.
    work: VecDeque<(Slot, Work)>,
    /// What a step or the links said, in order, before it goes out.
    staged: VecDeque<Output>,
    out: VecDeque<Output>,
    now: Instant,
    /// The earliest timer of the sessions and links, as of the last `handle`
    /// (only `handle` changes them).
    timeout: Option<Instant>,
}

impl Server {
    pub(crate) fn new(config: EntityConfig, role: Role, now: Instant, ids: SharedIds) -> Self {
        let endpoint = EndpointConfig {
            bind_timeout: config.bind_timeout,
            reuse_links: config.reuse_links,
            link_window: config.link_window,
            // What waits for a link to come up is the user's own message (a
            // sender's, already in memory) or what a relay read upstream,
            // which `relay_window` bounds by pausing the reading.
            max_queued_before_up: usize::MAX,
            ..EndpointConfig::default()
        };
        Self {
            config,
            role,
            ids,
            sessions: BTreeMap::new(),
            next_inbound: 0,
            calls: HashMap::new(),
            links: Links::new(endpoint, now),
            deliveries: HashMap::new(),
            next_delivery: 0,
            stats: Stats::default(),
            buffered: HashMap::new(),
            buffered_total: (0, 0),
            holding: Vec::new(),
            work: VecDeque::new(),
            staged: VecDeque::new(),
            out: VecDeque::new(),
            now,
            timeout: None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// No session left, no link open.
    pub(crate) fn is_idle(&self) -> bool {
        self.sessions.is_empty() && self.links.is_idle()
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        self.timeout
    }

    /// Each hop of the sessions running now, with the trigger its link
    /// machine uses.
    pub(crate) fn hop_triggers(&self) -> Vec<(String, Trigger)> {
        self.sessions.values().flat_map(Node::hop_triggers).collect()
    }

    /// The sessions running now.
    pub(crate) fn sessions(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }

    /// Number of sessions running now.
    pub(crate) fn session_count(&self) -> usize {
        self.sessions.len()
    }

    pub(crate) fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.now = self.now.max(now);
        self.stats.input(&input);
        // The sessions on a link whose bytes move hold and queue other
        // amounts after it, whether or not they have anything to say.
        let touched = match &input {
            Input::MsrpReceived { conn, .. } | Input::MsrpWritten { conn, .. } | Input::MsrpClosed { conn } => {
                self.links.owners_on(*conn)
            }
            Input::Timeout => self.sessions.keys().copied().collect(),
            _ => Vec::new(),
        };
        let result = self.route(input);
        let mut work = self.run_work();
        for slot in touched {
            self.measure(slot);
        }
        if self.collect_finished() {
            work = work.and(self.run_work());
        }
        let links = self.links.poll_timeout();
        self.timeout = self.sessions.values().filter_map(Node::poll_timeout).chain(links).min();
        result.and(work)
    }

    fn route(&mut self, input: Input) -> Result<(), UsageError> {
        let now = self.now;
        match input {
            Input::SipReceived { flow, message } => {
                if let Some(slot) = self.sip_slot(flow, &message) {
                    self.work.push_back((slot, Work::Input(Input::SipReceived { flow, message })));
                }
            }
            Input::SipDatagram { flow, bytes } => {
                // RFC 3261 s.18.3: one message per datagram; its Call-ID picks the session.
                match sip::parse_datagram(bytes.clone(), &sip::Limits::default()) {
                    Ok(message) => {
                        if let Some(slot) = self.sip_slot(flow, &message) {
                            self.work.push_back((slot, Work::Input(Input::SipDatagram { flow, bytes })));
                        }
                    }
                    Err(error) => {
                        self.event(None, Event::PeerError { error: PeerError::SipDatagram(error) });
                    }
                }
            }
            Input::Connected { hop, conn } => match self.links.connected(now, hop, conn) {
                None => return Err(UsageError::UnknownHop),
                // Every session that wanted the link ended while it was being opened.
                Some(None) => self.emit(Output::CloseLink { conn }),
                Some(Some(internal)) => self.link_up(internal),
            },
            Input::ConnectFailed { hop } => {
                if self.links.connect_failed(now, hop).is_none() {
                    return Err(UsageError::UnknownHop);
                }
            }
            Input::Accepted { conn } => self.links.accepted_conn(now, conn).map_err(|_| UsageError::DuplicateConn)?,
            Input::MsrpReceived { conn, data } => {
                self.links.conn_input(now, conn, |conn| link::Input::Received { conn, data });
            }
            Input::MsrpWritten { conn, bytes } => {
                self.links.conn_input(now, conn, |conn| link::Input::Written { conn, bytes });
            }
            Input::MsrpClosed { conn } => self.links.conn_input(now, conn, |conn| link::Input::Closed { conn }),
            Input::NonCpmAck { delivery, status } => {
                let (slot, delivery) = self.deliveries.remove(&delivery).ok_or(UsageError::UnknownDelivery)?;
                self.work.push_back((slot, Work::Input(Input::NonCpmAck { delivery, status })));
            }
            Input::Timeout => {
                self.links.timeout(now);
                for slot in self.sessions.keys() {
                    self.work.push_back((*slot, Work::Input(Input::Timeout)));
                }
            }
            Input::Command(command @ Command::SendMessage { session, .. }) => {
                if session.is_inbound() || self.sessions.contains_key(&session) {
                    return Err(UsageError::DuplicateSession);
                }
                self.new_session(session);
                // A command's own mistake is the caller's: answered at once.
                self.feed(session, Work::Input(Input::Command(command)))?;
            }
            Input::Command(Command::End { session }) => {
                if !self.sessions.contains_key(&session) {
                    return Err(UsageError::UnknownSession);
                }
                self.work.push_back((session, Work::Input(Input::Command(Command::End { session }))));
            }
        }
        Ok(())
    }

    /// The hops on an endpoint link that just came up learn it.
    fn link_up(&mut self, conn: ConnId) {
        for key in self.links.sessions_on(conn).to_vec() {
            if let Some((slot, index)) = self.links.owner(key) {
                self.work.push_back((slot, Work::LinkUp(index)));
            }
        }
    }

    /// The session a SIP message belongs to, a new one for a request of an
    /// unknown Call-ID, `None` for a stray response.
    fn sip_slot(&mut self, flow: FlowId, message: &Message) -> Option<Slot> {
        let call_id = message.call_id().unwrap_or_default();
        if let Some(slot) = self.calls.get(call_id).filter(|s| self.sessions.contains_key(s)) {
            return Some(*slot);
        }
        // RFC 3261 s.18.1.2: a response no transaction matches is discarded.
        if !message.is_request() {
            return None;
        }
        // Only an INVITE outside any dialog starts a session; anything else of
        // an unknown Call-ID is answered here and keeps nothing.
        if message.method() != Some("INVITE") || message.to_tag().is_some() {
            self.answer_outside_session(flow, message);
            return None;
        }
        if self.sessions.len() >= self.config.max_sessions {
            // RFC 3261 s.21.5.4: "503 Service Unavailable: The server is temporarily
            // unable to process the request due to a temporary overloading".
            let mut reply = response(message, 503, Some(&stateless_tag(message)));
            reply.header("Retry-After", &RETRY_AFTER.as_secs().to_string());
            self.emit(Output::SipTransmit { flow, bytes: reply.encode() });
            let sessions = self.sessions.len();
            self.event(None, Event::PeerError { error: PeerError::AtCapacity { sessions } });
            return None;
        }
        let slot = self.new_inbound_session();
        self.calls.insert(call_id.to_owned(), slot);
        Some(slot)
    }

    /// Answers, statelessly, a request that starts no session (RFC 3261
    /// s.8.2.7: the To tag a function of the request).
    fn answer_outside_session(&mut self, flow: FlowId, request: &Message) {
        let tag = stateless_tag(request);
        let reply = match request.method() {
            // s.17.1.1.3: an ACK is never answered.
            Some("ACK") | None => return,
            // s.9.2: "If the UAS did not find a matching transaction for the
            // CANCEL ..., it SHOULD respond to the CANCEL with a 481"; s.12.2.2:
            // a request with a To tag that matches no dialog gets 481 (a BYE
            // outside any dialog too).
            Some("CANCEL" | "BYE") => response(request, 481, Some(&tag)),
            Some(_) if request.to_tag().is_some() => response(request, 481, Some(&tag)),
            // s.11.2: OPTIONS gets what an INVITE would (503 at capacity);
            // s.8.2.1, s.21.5.2: 405 with Allow, 501.
            Some(_) => {
                let busy = (self.sessions.len() >= self.config.max_sessions).then_some(RETRY_AFTER);
                let Some(reply) = entity_capabilities().answer(request, &tag, busy) else { return };
                reply
            }
        };
        self.emit(Output::SipTransmit { flow, bytes: reply.encode() });
    }

    /// A new session: `id` for one the caller starts, else the next inbound
    /// one, reported with [`Event::SessionStarted`].
    fn new_session(&mut self, id: SessionId) {
        let node = Node::new(self.config.clone(), &self.role, self.now, self.ids.clone());
        self.sessions.insert(id, node);
    }

    fn new_inbound_session(&mut self) -> Slot {
        let slot = SessionId::inbound(self.next_inbound);
        self.next_inbound += 1;
        self.new_session(slot);
        self.event(Some(slot), Event::SessionStarted);
        slot
    }

    fn event(&mut self, session: Option<SessionId>, event: Event) {
        self.emit(Output::Event { session, event });
    }

    /// Every output leaves through here (and is counted).
    fn emit(&mut self, output: Output) {
        self.stats.output(&output);
        self.out.push_back(output);
    }

    /// The entity's counters and levels.
    pub(crate) fn stats(&self) -> Stats {
        let mut stats = self.stats.clone();
        stats.sessions = self.sessions.len();
        stats.links = self.links.link_count();
        stats.bytes_held = self.buffered_total.0 + self.links.framer_bytes();
        stats.bytes_queued = self.buffered_total.1;
        stats
    }

    /// Runs one session's work now, then everything it causes.
    fn feed(&mut self, slot: Slot, work: Work) -> Result<(), UsageError> {
        let result = self.step(slot, work);
        result.and(self.run_work())
    }

    fn step(&mut self, slot: Slot, work: Work) -> Result<(), UsageError> {
        let now = self.now;
        let Some(node) = self.sessions.get_mut(&slot) else { return Ok(()) };
        let mut step = Step { node, links: &mut self.links, slot, out: &mut self.staged, work: &mut self.work };
        let result = step.handle(now, work);
        // The legs it started come back with their Call-IDs (from its user agent).
        for call_id in node.take_new_calls() {
            self.calls.entry(call_id).or_insert(slot);
        }
        self.measure(slot);
        self.drain(Some(slot));
        result
    }

    /// Runs the queued work and what the links say, until nothing moves.
    fn run_work(&mut self) -> Result<(), UsageError> {
        let mut result = Ok(());
        loop {
            while let Some((slot, work)) = self.work.pop_front() {
                if let Err(error) = self.step(slot, work) {
                    result = result.and(Err(error));
                }
            }
            let moved = self.links_output();
            // Sessions waiting for their hops to write (a held REPORT, a BYE
            // after what is owed upstream) look again.
            let waiting: Vec<Slot> =
                self.sessions.iter().filter(|(_, n)| n.waits_on_sessions()).map(|(slot, _)| *slot).collect();
            let before = self.out.len();
            for slot in waiting {
                let _ = self.step(slot, Work::Pump);
            }
            self.relay_backpressure();
            if !moved && self.work.is_empty() && self.out.len() == before && !self.links.has_output() {
                return result;
            }
        }
    }

    /// Takes the links' outputs: frames out, link changes and MSRP events
    /// to the sessions they concern. `true` when there were any.
    fn links_output(&mut self) -> bool {
        let work = self.work.len();
        self.links.drain(&mut self.staged, &mut self.work);
        let moved = !self.staged.is_empty() || self.work.len() != work;
        self.drain(None);
        moved
    }

    /// A relay whose members have more than [`EntityConfig::relay_window`]
    /// bytes queued stops reading its upstream link, and reads again once
    /// they have half of it (the link is shared: it is read again when no
    /// relay on it holds it back).
    fn relay_backpressure(&mut self) {
        let window = self.config.relay_window;
        let mut changed = Vec::new();
        for (slot, node) in &self.sessions {
            let Some((up, queued)) = node.relay_backlog(&self.links) else { continue };
            let Some(conn) = self.links.link_of(up) else { continue };
            let held = self.holding.iter().any(|(s, _)| s == slot);
            let hold = if held { queued > window / 2 } else { queued > window };
            if hold != held {
                if hold {
                    self.holding.push((*slot, conn));
                } else {
                    self.holding.retain(|(s, _)| s != slot);
                }
                changed.push(conn);
            }
        }
        for conn in changed {
            self.update_reading(conn);
        }
    }

    /// Reads `conn` again unless a relay on it still holds it back.
    fn update_reading(&mut self, conn: ConnId) {
        let held = self.holding.iter().any(|(_, c)| *c == conn);
        self.links.set_reading(conn, !held);
    }

    /// Sends what a step (of session `slot`) or the links said on its way:
    /// link requests to the links, the rest out.
    fn drain(&mut self, slot: Option<Slot>) {
        while let Some(output) = self.staged.pop_front() {
            match (output, slot) {
                (Output::Connect { hop, label, params, trigger }, Some(slot)) => {
                    let index = usize::try_from(hop.get()).unwrap_or(usize::MAX);
                    self.connect(slot, index, label, params, trigger);
                }
                (
                    Output::Event {
                        session: Some(session),
                        event: Event::DeliverToNonCpm { delivery, system, format, payload, parts, envelope },
                    },
                    _,
                ) => {
                    // The session's own id becomes one unique in the element.
                    let element = DeliveryId::new(self.next_delivery);
                    self.next_delivery += 1;
                    self.deliveries.insert(element, (session, delivery));
                    let event = Event::DeliverToNonCpm { delivery: element, system, format, payload, parts, envelope };
                    self.event(Some(session), event);
                }
                (other, _) => self.emit(other),
            }
        }
    }

    /// Brings the session's held and queued bytes into the totals.
    fn measure(&mut self, slot: Slot) {
        let now = self.sessions.get(&slot).map_or((0, 0), |n| n.buffered(&self.links));
        let before = self.buffered.insert(slot, now).unwrap_or((0, 0));
        self.buffered_total.0 = self.buffered_total.0 + now.0 - before.0;
        self.buffered_total.1 = self.buffered_total.1 + now.1 - before.1;
    }

    /// Hop `index` of session `slot` is to connect: RFC 4975 s.5.4, "If the
    /// connection is to a remote host and one associated with the same
    /// host, port, and URI scheme already exists, the endpoint SHOULD reuse
    /// that connection."
    fn connect(
        &mut self,
        slot: Slot,
        index: usize,
        label: String,
        params: cpm_negotiation::ConnectParams,
        trigger: Trigger,
    ) {
        let now = self.now;
        let key = self.sessions.get(&slot).and_then(|n| n.session_key(index));
        let connecting = key.map_or(Connecting::Failed, |key| self.links.connect(now, key));
        match connecting {
            Connecting::Opening(hop) => self.emit(Output::Connect { hop, label, params, trigger }),
            Connecting::Reused(conn) => {
                self.event(Some(slot), Event::LinkReused { hop: label, trigger, params, conn });
                // On a link that is up already, the hop is up now.
                if key.and_then(|key| self.links.link_of(key)).is_some_and(|c| self.links.is_up(c)) {
                    self.work.push_back((slot, Work::LinkUp(index)));
                }
            }
            Connecting::Failed => self.work.push_back((slot, Work::ConnectFailed(index))),
        }
    }

    /// Sessions with nothing left go; their MSRP sessions leave the links.
    /// `true` when the links have something to say about it.
    fn collect_finished(&mut self) -> bool {
        let links = &self.links;
        let done: Vec<Slot> = self.sessions.iter().filter(|(_, n)| n.is_idle(links)).map(|(s, _)| *s).collect();
        for slot in done {
            let Some(node) = self.sessions.remove(&slot) else { continue };
            for key in node.session_keys() {
                let _ = self.links.close(self.now, key);
            }
            self.measure(slot);
            self.buffered.remove(&slot);
            // A relay that ends lets go of the link it held back.
            let released: Vec<ConnId> =
                self.holding.iter().filter(|(s, _)| *s == slot).map(|(_, conn)| *conn).collect();
            self.holding.retain(|(s, _)| *s != slot);
            for conn in released {
                self.update_reading(conn);
            }
            self.calls.retain(|_, s| *s != slot);
            self.deliveries.retain(|_, (s, _)| *s != slot);
        }
        // Links the finished sessions were the last on close.
        self.links.has_output()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::ids::SimulationIds;
    use crate::Outcome;
    use bytes::Bytes;
    use cpm_negotiation::{Figure, Hop, Preset};
    use std::time::Duration;

    #[expect(clippy::disallowed_methods, reason = "test epoch")]
    fn epoch() -> Instant {
        Instant::now()
    }

    fn receiver() -> Server {
        let config = EntityConfig::new("B", "b.example.com", 2855, Preset::figure(Figure::Seed001Fig1));
        let role = Role::Receiver { hop: Hop::L4, label: "L4".to_owned(), reject: None };
        Server::new(config, role, epoch(), SharedIds::new(SimulationIds::new(3)))
    }

    fn outputs(server: &mut Server) -> Vec<Output> {
        std::iter::from_fn(|| server.poll_output()).collect()
    }

    /// RFC 4975 s.5.4: a request whose To-Path names no session here is
    /// answered 481.
    #[test]
    fn a_request_for_no_session_is_answered_481() {
        let mut server = receiver();
        let conn = ConnId::new(1);
        server.handle(epoch(), Input::Accepted { conn }).unwrap();
        let send = "MSRP a786hjs2 SEND\r\nTo-Path: msrp://b.example.com:2855/nosuch;tcp\r\n\
                    From-Path: msrp://a.example.com:2855/s1;tcp\r\nMessage-ID: m1abcd\r\n\
                    Byte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------a786hjs2$\r\n";
        server.handle(epoch(), Input::MsrpReceived { conn, data: Bytes::from(send) }).unwrap();
        let outputs = outputs(&mut server);
        let [Output::MsrpTransmit { transmit, .. }] = outputs.as_slice() else { panic!("{outputs:?}") };
        assert!(transmit.head.starts_with(b"MSRP a786hjs2 481"), "{:?}", transmit.head);
        assert_eq!(server.session_count(), 0);
    }

    /// RFC 3261 s.18.1.2: a response matching no transaction is dropped (no
    /// session is made for it); a BYE outside any dialog is answered 481
    /// (s.12.2.2) and makes no session.
    #[test]
    fn stray_sip_is_answered_or_dropped() {
        let mut server = receiver();
        let flow = FlowId::new(1);
        let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bKx1\r\n\
                        From: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n\
                        Call-ID: stray@a\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let message = Message::parse(Bytes::from(response)).unwrap();
        server.handle(epoch(), Input::SipReceived { flow, message }).unwrap();
        assert!(outputs(&mut server).is_empty());
        assert!(server.is_idle());
        let bye = "BYE sip:b@b.example.com SIP/2.0\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bKx2\r\n\
                   Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n\
                   Call-ID: gone@a\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
        let message = Message::parse(Bytes::from(bye)).unwrap();
        server.handle(epoch(), Input::SipReceived { flow, message }).unwrap();
        let outputs = outputs(&mut server);
        let [Output::SipTransmit { bytes, .. }] = outputs.as_slice() else { panic!("{outputs:?}") };
        assert!(bytes.starts_with(b"SIP/2.0 481"), "{:?}", std::str::from_utf8(bytes));
        assert!(server.is_idle(), "no session was made");
    }

    /// A sender (A) whose INVITE for "hello" B answered 200: its session,
    /// the hop it asks to connect, and B's MSRP URI.
    fn answered_sender() -> (Server, SessionId, crate::HopId, String) {
        let config = EntityConfig::new("A", "a.example.com", 2855, Preset::figure(Figure::Seed001Fig1));
        let role = Role::Sender { flow: FlowId::new(1), hop: Hop::L1, label: "L1".to_owned() };
        let mut a = Server::new(config, role, epoch(), SharedIds::new(SimulationIds::new(5)));
        let session = SessionId::new(1);
        let send = Command::SendMessage {
            session,
            target: "sip:b@example.com".into(),
            recipients: Vec::new(),
            content_type: "text/plain".into(),
            body: Bytes::from_static(b"hello"),
        };
        a.handle(epoch(), Input::Command(send)).unwrap();
        let invite = sip_out(&outputs(&mut a)).remove(0);
        // B answers with an MSRP answer: A is the active side (fig1: after the 200).
        let offer = cpm_negotiation::MsrpSdp::parse(invite.body()).unwrap();
        let mut ids = SimulationIds::new(8);
        let uri =
            msrp_core::session::new_local_uri(msrp_core::uri::Scheme::Msrp, "pfa.example.com", 2855, "tcp", &mut ids)
                .unwrap();
        let caps = EntityConfig::new("B", "pfa.example.com", 2855, Preset::figure(Figure::Seed001Fig1)).capabilities;
        let answer = cpm_negotiation::answer_offer(&offer, uri.clone(), &caps, cpm_negotiation::Side::Offerer).unwrap();
        let sdp = answer.media.to_sdp("- 1 1 IN IP4 pfa.example.com").unwrap().to_bytes();
        let mut ok = sip::MessageBuilder::response_to(&invite, 200, "OK", Some("t1"));
        ok.header("Contact", "<sip:pfa.example.com>").header("Content-Type", "application/sdp").body(sdp);
        let ok = ok.build().unwrap();
        a.handle(epoch(), Input::SipReceived { flow: FlowId::new(1), message: ok }).unwrap();
        let hop = outputs(&mut a)
            .iter()
            .find_map(|o| match o {
                Output::Connect { hop, .. } => Some(*hop),
                _ => None,
            })
            .expect("A connects after the 200");
        (a, session, hop, uri.to_string())
    }

    /// The SIP messages among `outputs`.
    fn sip_out(outputs: &[Output]) -> Vec<Message> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::SipTransmit { bytes, .. } => Message::parse(bytes.clone()).ok(),
                _ => None,
            })
            .collect()
    }

    /// A sender whose session ends while its L1 link is being opened: the
    /// session goes, and the link is closed the moment it comes up.
    #[test]
    fn a_link_that_comes_up_after_its_session_ended_is_closed() {
        let (mut a, session, hop, _) = answered_sender();
        // The user ends the session before the link is up: BYE, answered.
        a.handle(epoch(), Input::Command(Command::End { session })).unwrap();
        let bye = sip_out(&outputs(&mut a)).into_iter().find(|m| m.method() == Some("BYE")).expect("BYE");
        let ok = sip::MessageBuilder::response_to(&bye, 200, "OK", None).build().unwrap();
        a.handle(epoch(), Input::SipReceived { flow: FlowId::new(1), message: ok }).unwrap();
        let _ = outputs(&mut a);
        // RFC 6026 s.8.4: the INVITE transaction lingers for Timer M (64*T1).
        a.handle(epoch() + Duration::from_secs(64), Input::Timeout).unwrap();
        let _ = outputs(&mut a);
        assert_eq!(a.session_count(), 0, "the session ended");
        assert!(!a.is_idle(), "the link being opened is still owed a close");
        let conn = ConnId::new(40);
        a.handle(epoch(), Input::Connected { hop, conn }).unwrap();
        assert_eq!(outputs(&mut a), [Output::CloseLink { conn }]);
        assert!(a.is_idle());
    }

    /// A link that was up and that the endpoint closes itself (its framing
    /// failed) is a lost link for its hop, not a connect that failed: the
    /// sender's outcome is [`Outcome::LinkLost`].
    #[test]
    fn a_link_closed_on_a_framing_error_is_lost_not_refused() {
        let (mut a, session, hop, _) = answered_sender();
        let conn = ConnId::new(40);
        a.handle(epoch(), Input::Connected { hop, conn }).unwrap();
        let _ = outputs(&mut a);
        a.handle(epoch(), Input::MsrpReceived { conn, data: Bytes::from_static(b"HELLO there\r\n\r\n") }).unwrap();
        let out = outputs(&mut a);
        let outcome = out.iter().find_map(|o| match o {
            Output::Event { session: s, event: Event::Outcome { outcome } } if *s == Some(session) => Some(*outcome),
            _ => None,
        });
        assert_eq!(outcome, Some(Outcome::LinkLost), "{out:?}");
    }

    /// A request of `method` outside any dialog, with a fresh Call-ID.
    fn request(method: &str, call_id: &str) -> Message {
        let text = format!(
            "{method} sip:b@b.example.com SIP/2.0\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:a.example.com>\r\nContent-Length: 0\r\n\r\n"
        );
        Message::parse(Bytes::from(text)).unwrap()
    }

    /// The SIP responses among `outputs`.
    fn responses(outputs: Vec<Output>) -> Vec<Message> {
        outputs
            .into_iter()
            .filter_map(|o| match o {
                Output::SipTransmit { bytes, .. } => Message::parse(bytes).ok().filter(|m| !m.is_request()),
                _ => None,
            })
            .collect()
    }

    fn status(outputs: Vec<Output>) -> Vec<u16> {
        responses(outputs).iter().filter_map(Message::status_code).collect()
    }

    fn capped_receiver(max_sessions: usize) -> Server {
        let mut config = EntityConfig::new("B", "b.example.com", 2855, Preset::figure(Figure::Seed001Fig1));
        config.max_sessions = max_sessions;
        let role = Role::Receiver { hop: Hop::L4, label: "L4".to_owned(), reject: None };
        Server::new(config, role, epoch(), SharedIds::new(SimulationIds::new(3)))
    }

    /// RFC 3261 s.21.5.4: beyond `max_sessions`, a request that would start
    /// one more session is answered 503 with Retry-After and starts none.
    #[test]
    fn a_request_beyond_max_sessions_is_answered_503() {
        let mut b = capped_receiver(1);
        let flow = FlowId::new(1);
        // The first INVITE (no offer) is refused by its session, which stays
        // for the ACK; it fills the one place.
        b.handle(epoch(), Input::SipReceived { flow, message: request("INVITE", "first") }).unwrap();
        assert!(status(outputs(&mut b)).iter().all(|&s| s != 503));
        assert_eq!(b.session_count(), 1);
        b.handle(epoch(), Input::SipReceived { flow, message: request("INVITE", "second") }).unwrap();
        let refused = responses(outputs(&mut b));
        assert_eq!(refused.iter().map(|m| m.status_code()).collect::<Vec<_>>(), [Some(503)]);
        assert_eq!(refused[0].header_values("Retry-After").next(), Some("10"));
        assert_eq!(b.session_count(), 1);
    }

    /// A request outside any dialog that is not an INVITE is answered by the
    /// element and never holds a session place: OPTIONS with what an INVITE
    /// would get (RFC 3261 s.11.2), 405 with Allow (s.8.2.1), 501 (s.21.5.2),
    /// 481 for a CANCEL (s.9.2) or a request with a To tag (s.12.2.2); an ACK
    /// gets nothing. 10 000 OPTIONS with fresh Call-IDs leave the one place
    /// free for an INVITE.
    #[test]
    fn requests_outside_a_dialog_are_answered_and_hold_no_session() {
        let mut b = capped_receiver(1);
        let flow = FlowId::new(1);
        for n in 0..10_000 {
            b.handle(epoch(), Input::SipReceived { flow, message: request("OPTIONS", &format!("o{n}")) }).unwrap();
            assert_eq!(status(outputs(&mut b)), [200]);
        }
        assert_eq!(b.session_count(), 0);
        b.handle(epoch(), Input::SipReceived { flow, message: request("OPTIONS", "allow") }).unwrap();
        let ok = responses(outputs(&mut b));
        let allow = ok[0].headers_named("Allow").next().map(|h| h.value().into_owned());
        assert_eq!(allow.as_deref(), Some("INVITE, ACK, CANCEL, BYE, OPTIONS"));
        for (method, want) in
            [("SUBSCRIBE", vec![405]), ("FROBNICATE", vec![501]), ("CANCEL", vec![481]), ("ACK", vec![])]
        {
            b.handle(epoch(), Input::SipReceived { flow, message: request(method, method) }).unwrap();
            assert_eq!(status(outputs(&mut b)), want, "{method}");
        }
        let in_dialog = Message::parse(Bytes::from(
            String::from_utf8_lossy(request("INFO", "d").as_bytes())
                .replace("<sip:b@example.com>", "<sip:b@example.com>;tag=9"),
        ))
        .unwrap();
        b.handle(epoch(), Input::SipReceived { flow, message: in_dialog }).unwrap();
        assert_eq!(status(outputs(&mut b)), [481]);
        assert_eq!(b.session_count(), 0);
        b.handle(epoch(), Input::SipReceived { flow, message: request("INVITE", "call") }).unwrap();
        assert!(status(outputs(&mut b)).iter().all(|&s| s != 503));
        assert_eq!(b.session_count(), 1);
        // At capacity, OPTIONS gets 503 as an INVITE would.
        b.handle(epoch(), Input::SipReceived { flow, message: request("OPTIONS", "busy") }).unwrap();
        assert_eq!(status(outputs(&mut b)), [503]);
        let refusals: Vec<(u16, u64)> = b.stats().refusals.into_iter().filter(|(s, _)| *s != 488).collect();
        assert_eq!(refusals, [(405, 1), (481, 2), (501, 1), (503, 1)]);
        assert_eq!((b.stats().sip_in, b.stats().sessions), (10_000 + 8, 1));
    }

    /// RFC 4975 s.6: a link whose framing fails is closed at once, and
    /// nothing more is read from it.
    #[test]
    fn a_link_that_fails_framing_is_closed() {
        let mut server = receiver();
        let conn = ConnId::new(4);
        server.handle(epoch(), Input::Accepted { conn }).unwrap();
        server.handle(epoch(), Input::MsrpReceived { conn, data: Bytes::from_static(b"HELLO there\r\n\r\n") }).unwrap();
        let closed = outputs(&mut server);
        assert!(
            matches!(closed.as_slice(), [Output::Event { event: Event::PeerError { error: PeerError::MsrpFraming(_) }, session: None }, Output::CloseLink { conn: c }] if *c == conn),
            "{closed:?}"
        );
        let send = "MSRP a786hjs2 SEND\r\nTo-Path: msrp://b.example.com:2855/nosuch;tcp\r\n\
                    From-Path: msrp://a.example.com:2855/s1;tcp\r\nMessage-ID: m1abcd\r\n\
                    Byte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------a786hjs2$\r\n";
        server.handle(epoch(), Input::MsrpReceived { conn, data: Bytes::from(send) }).unwrap();
        assert!(outputs(&mut server).is_empty(), "the closed link is not read");
        assert!(server.is_idle());
    }

    /// A receiver (B) that answered an INVITE with an MSRP offer, and
    /// accepted the link A is to open: its session id (the last segment of
    /// its path), the link, and the To tag of its 200.
    fn answered_receiver() -> (Server, String, ConnId, String) {
        let mut server = receiver();
        let sdp = "v=0\r\no=a 1 1 IN IP4 a.example.com\r\ns=-\r\nc=IN IP4 a.example.com\r\nt=0 0\r\n\
                   m=message 2855 TCP/MSRP *\r\na=accept-types:text/plain\r\n\
                   a=path:msrp://a.example.com:2855/s1;tcp\r\n";
        let invite = format!(
            "INVITE sip:b@b.example.com SIP/2.0\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bKc\r\n\
             Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>\r\n\
             Call-ID: c\r\nCSeq: 1 INVITE\r\nContact: <sip:a.example.com>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        );
        let message = Message::parse(Bytes::from(invite)).unwrap();
        server.handle(epoch(), Input::SipReceived { flow: FlowId::new(1), message }).unwrap();
        let answer = responses(outputs(&mut server)).into_iter().find(|m| m.status_code() == Some(200)).unwrap();
        let body = String::from_utf8_lossy(&answer.body()).into_owned();
        let path = body.lines().find_map(|l| l.strip_prefix("a=path:")).unwrap().to_owned();
        let session = path.rsplit('/').next().unwrap().trim_end_matches(";tcp").to_owned();
        let conn = ConnId::new(2);
        server.handle(epoch(), Input::Accepted { conn }).unwrap();
        (server, session, conn, answer.to_tag().unwrap().to_owned())
    }

    /// RFC 4975 s.4: a link a peer keeps open after its session ended holds
    /// no session place, and is closed once unused for `bind_timeout`.
    #[test]
    fn a_link_kept_open_after_its_session_ended_is_closed() {
        let (mut server, session, conn, to_tag) = answered_receiver();
        let start = epoch();
        let send = format!(
            "MSRP tx000001 SEND\r\nTo-Path: msrp://b.example.com:2855/{session};tcp\r\n\
             From-Path: msrp://a.example.com:2855/s1;tcp\r\nMessage-ID: msg00001\r\n\
             Byte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------tx000001$\r\n"
        );
        server.handle(start, Input::MsrpReceived { conn, data: Bytes::from(send) }).unwrap();
        // The peer's ACK, then its BYE: the session ends; the peer never closes the link.
        for (method, seq) in [("ACK", 1), ("BYE", 2)] {
            let text = format!(
                "{method} sip:b@b.example.com SIP/2.0\r\nVia: SIP/2.0/TCP a.example.com;branch=z9hG4bK{method}\r\n\
                 Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag={to_tag}\r\n\
                 Call-ID: c\r\nCSeq: {seq} {method}\r\nContent-Length: 0\r\n\r\n"
            );
            let message = Message::parse(Bytes::from(text)).unwrap();
            server.handle(start, Input::SipReceived { flow: FlowId::new(1), message }).unwrap();
        }
        assert_eq!(status(outputs(&mut server)), [200], "the BYE is answered");
        // Through every timer: the session's transactions end, then the link's deadline.
        let mut closed_at = None;
        while let Some(at) = server.poll_timeout() {
            server.handle(at, Input::Timeout).unwrap();
            if outputs(&mut server).iter().any(|o| matches!(o, Output::CloseLink { conn: c } if *c == conn)) {
                closed_at = Some(at);
            }
        }
        assert_eq!(server.session_count(), 0, "the session holds no place");
        let closed_at = closed_at.expect("the unused link is closed");
        assert!(closed_at >= start + Duration::from_secs(30));
        assert!(server.is_idle());
    }

    /// A peer that spells its session's URI many ways (RFC 4975 s.6.1
    /// compares the host case-insensitively) reaches the session each time,
    /// and routing keeps nothing per spelling.
    #[test]
    fn every_spelling_of_a_session_uri_reaches_it() {
        let (mut server, session, conn, _) = answered_receiver();
        for n in 0..1000u32 {
            // "b.example.com" with its k-th letter upper-cased when bit k of n is set.
            let mut letter = 0;
            let host: String = "b.example.com"
                .chars()
                .map(|c| {
                    if !c.is_ascii_alphabetic() {
                        return c;
                    }
                    letter += 1;
                    if n >> (letter - 1) & 1 == 1 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            let id = format!("tx{n:04}");
            let send = format!(
                "MSRP {id} SEND\r\nTo-Path: msrp://{host}:2855/{session};tcp\r\n\
                 From-Path: msrp://a.example.com:2855/s1;tcp\r\nMessage-ID: msg{n:04}\r\n\
                 Byte-Range: 1-2/2\r\nContent-Type: text/plain\r\n\r\nhi\r\n-------{id}$\r\n"
            );
            server.handle(epoch(), Input::MsrpReceived { conn, data: Bytes::from(send) }).unwrap();
            let out = outputs(&mut server);
            let answered = out.iter().any(|o| {
                matches!(o, Output::MsrpTransmit { transmit, .. } if transmit.head.starts_with(format!("MSRP {id} 200").as_bytes()))
            });
            assert!(answered, "spelling {host} reached the session: {out:?}");
            // The runtime wrote them: the link's window opens again.
            let bytes = out
                .iter()
                .map(|o| if let Output::MsrpTransmit { transmit, .. } = o { transmit.len() } else { 0 })
                .sum();
            server.handle(epoch(), Input::MsrpWritten { conn, bytes }).unwrap();
        }
        // Routing keeps nothing per spelling: one link, one session.
        assert_eq!((server.stats().links, server.session_count()), (1, 1));
        assert_eq!(server.stats().bytes_held, 0);
    }

    /// A peer that opens a link and says nothing has it closed after
    /// `bind_timeout`.
    #[test]
    fn an_accepted_link_that_binds_no_session_is_closed() {
        let mut server = receiver();
        let start = epoch();
        let conn = ConnId::new(9);
        server.handle(start, Input::Accepted { conn }).unwrap();
        assert_eq!(server.poll_timeout(), Some(start + Duration::from_secs(30)));
        server.handle(start + Duration::from_secs(29), Input::Timeout).unwrap();
        assert!(outputs(&mut server).is_empty());
        server.handle(start + Duration::from_secs(30), Input::Timeout).unwrap();
        let closed = outputs(&mut server);
        assert!(closed.iter().any(|o| matches!(o, Output::CloseLink { conn: c } if *c == conn)), "{closed:?}");
        let reported = Event::PeerError { error: PeerError::LinkUnused { conn, after: Duration::from_secs(30) } };
        assert!(closed.contains(&Output::Event { session: None, event: reported }), "{closed:?}");
        assert_eq!((server.stats().links, server.poll_timeout()), (0, None));
    }

    /// RFC 4975 s.7.1.2, s.7.3.2: a success REPORT covers the Byte-Range it
    /// names: the sender's outcome is Delivered only once REPORTs cover the
    /// whole message, and TimedOut when they never do.
    #[test]
    fn a_partial_success_report_is_not_delivery() {
        for complete in [true, false] {
            let (mut a, session, hop, b_uri) = answered_sender();
            let conn = ConnId::new(40);
            a.handle(epoch(), Input::Connected { hop, conn }).unwrap();
            let mut wire = String::new();
            for output in outputs(&mut a) {
                if let Output::MsrpTransmit { transmit, .. } = output {
                    for part in [transmit.head, transmit.body, transmit.end_line] {
                        wire.push_str(std::str::from_utf8(&part).unwrap());
                    }
                }
            }
            let header = |name: &str| {
                wire.lines().find_map(|l| l.strip_prefix(name)).map(str::to_owned).unwrap_or_else(|| panic!("{wire}"))
            };
            let tid = wire.lines().next().unwrap().split(' ').nth(1).unwrap().to_owned();
            let (message_id, a_uri) = (header("Message-ID: "), header("From-Path: "));
            let peer = |text: String| Input::MsrpReceived { conn, data: Bytes::from(text) };
            let ok = format!("MSRP {tid} 200 OK\r\nTo-Path: {a_uri}\r\nFrom-Path: {b_uri}\r\n-------{tid}$\r\n");
            a.handle(epoch(), peer(ok)).unwrap();
            let report = |id: &str, range: &str| {
                format!(
                    "MSRP {id} REPORT\r\nTo-Path: {a_uri}\r\nFrom-Path: {b_uri}\r\nMessage-ID: {message_id}\r\n\
                     Byte-Range: {range}\r\nStatus: 000 200 OK\r\n-------{id}$\r\n"
                )
            };
            a.handle(epoch(), peer(report("rep00001", "1-2/5"))).unwrap();
            let outcome = |outputs: Vec<Output>| {
                outputs.into_iter().find_map(|o| match o {
                    Output::Event { session: s, event: Event::Outcome { outcome, .. } } if s == Some(session) => {
                        Some(outcome)
                    }
                    _ => None,
                })
            };
            assert_eq!(outcome(outputs(&mut a)), None, "bytes 1-2 of 5 are not the message");
            if complete {
                a.handle(epoch(), peer(report("rep00002", "3-5/5"))).unwrap();
                assert_eq!(outcome(outputs(&mut a)), Some(Outcome::Delivered));
            } else {
                // Through every timer until the outcome: the REPORT deadline.
                let start = epoch();
                let ended = loop {
                    let at = a.poll_timeout().expect("a timer is armed until the outcome");
                    a.handle(at, Input::Timeout).unwrap();
                    if let Some(outcome) = outcome(outputs(&mut a)) {
                        break (at, outcome);
                    }
                };
                assert_eq!(ended.1, Outcome::TimedOut);
                assert!(ended.0 >= start + a.config.report_timeout - Duration::from_secs(1));
            }
        }
    }
}
