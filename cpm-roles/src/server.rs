//! One network element serving any number of SIP sessions, each run by its
//! own [`Node`], sharing the element's SIP flows, its MSRP port and, by
//! reuse, its MSRP links (RFC 4975 s.5.4; seed 000 paragraph 0040: "a creator
//! selects an existing MSRP link with a matched host, port and/or MSRP URI").
//!
//! - SIP is routed by Call-ID: an INVITE of an unknown Call-ID without a To
//!   tag starts a new session; any other request of an unknown Call-ID is
//!   answered here, statelessly, and holds no session place (OPTIONS as an
//!   INVITE would be, 405, 501, 481; RFC 3261 s.8.2.1, s.9.2, s.11.2,
//!   s.12.2.2); a response of an unknown Call-ID is dropped (s.18.1.2: no
//!   transaction matches it).
//! - MSRP is framed here, once per link, and every frame goes to the session
//!   whose URI is the first of its To-Path (s.5.4, s.7.2: responses too);
//!   a request for no session is answered 481.
//! - When a session asks to connect and [`EntityConfig::reuse_links`] is on,
//!   a link this element opened to the same scheme, host, port and transport
//!   ([`LinkKey`]) is reused instead ([`Event::LinkReused`]); the link closes
//!   when the last hop on it lets go (until then [`Event::LinkReleased`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cpm_negotiation::{LinkKey, Trigger};
use msrp_core::{Framer, FramerEvent, Limits, TransactionId, Transmit};
use sip_lite::ids::stateless_tag;
use sip_lite::sip::{self, Message};
use sip_lite::ua::response;

use crate::config::{entity_capabilities, EntityConfig, RETRY_AFTER};
use crate::error::{PeerError, UsageError};
use crate::ids::{ConnId, DeliveryId, FlowId, HopId, SessionId, SharedIds};
use crate::node::{Node, Role};
use crate::stats::Stats;
use crate::{Command, Event, Input, Output};

/// A session's slot: its creation number, never reused.
type Slot = SessionId;

/// A hop of one session: its slot and the session's own hop id.
type SessionHop = (Slot, HopId);

/// A link this element opened, with the hops that use it.
struct OpenedLink {
    key: LinkKey,
    /// `None` while connecting.
    conn: Option<ConnId>,
    /// The element-level hop id the runtime was asked to connect.
    opener: HopId,
    /// Every hop on the link (the opener first), with its trace label.
    users: Vec<(SessionHop, String)>,
}

/// The most To-Path spellings a link remembers.
const MAX_ROUTES: usize = 256;

/// One MSRP link as this element reads and writes it.
struct Link {
    framer: Framer,
    /// Whether a peer opened it.
    accepted: bool,
    /// A link a peer opened is closed at this time unless a frame for one of
    /// our sessions comes on it first (set when it is accepted, and again
    /// when the last session using it ended).
    unused_until: Option<Instant>,
    /// The session reading the current frame.
    current: Option<Slot>,
    /// The frame being written (its head is out, its end-line is not): a
    /// relay writes a chunk piece by piece as it arrives, and no other
    /// frame may cut into it (RFC 4975 s.7.1: a frame runs from its start
    /// line to its end-line).
    writing: Option<TransactionId>,
    /// The first To-Path URI as written, per session seen on this link (at
    /// most [`MAX_ROUTES`]: a peer can spell one URI many ways).
    routes: Vec<(String, Slot)>,
    /// Frames of other transactions waiting for `writing` to end, in order.
    waiting: VecDeque<Transmit>,
}

impl Link {
    fn new(unused_until: Option<Instant>) -> Self {
        Self {
            framer: Framer::new(Limits::default()),
            accepted: unused_until.is_some(),
            unused_until,
            current: None,
            writing: None,
            routes: Vec::new(),
            waiting: VecDeque::new(),
        }
    }

    /// Whether `transmit` may go out now.
    fn may_write(&self, transmit: &Transmit) -> bool {
        match &self.writing {
            Some(id) => *id == transmit.transaction_id,
            None => self.waiting.is_empty(),
        }
    }

    /// Notes that `transmit` went out.
    fn wrote(&mut self, transmit: &Transmit) {
        if !transmit.end_line.is_empty() {
            self.writing = None;
        } else if !transmit.head.is_empty() {
            self.writing = Some(transmit.transaction_id.clone());
        }
    }

    /// The next waiting piece that may go out now: one of the frame being
    /// written, or (none being written) the oldest.
    fn next_waiting(&mut self) -> Option<Transmit> {
        let pos = match &self.writing {
            Some(id) => self.waiting.iter().position(|t| t.transaction_id == *id)?,
            None => 0,
        };
        self.waiting.remove(pos)
    }
}

/// The sessions of one element and what they share.
pub(crate) struct Server {
    config: EntityConfig,
    role: Role,
    ids: SharedIds,
    sessions: BTreeMap<Slot, Node>,
    next_inbound: u64,
    calls: HashMap<String, Slot>,
    hop_ids: HashMap<SessionHop, HopId>,
    next_hop: u32,
    opened: Vec<OpenedLink>,
    links: HashMap<ConnId, Link>,
    /// IWF: each hand-over waiting for [`Input::NonCpmAck`], by the element's
    /// id, with its session and that session's own id for it.
    deliveries: HashMap<DeliveryId, (Slot, DeliveryId)>,
    next_delivery: u64,
    stats: Stats,
    /// Held and queued bytes of each session at its last drain, and their sums.
    buffered: HashMap<Slot, (usize, usize)>,
    buffered_total: (usize, usize),
    /// Inputs for sessions produced while handling their outputs.
    work: VecDeque<(Slot, Input)>,
    out: VecDeque<Output>,
    now: Instant,
    /// The earliest timer of the sessions, as of the last `handle` (only
    /// `handle` changes them).
    timeout: Option<Instant>,
}

impl Server {
    pub(crate) fn new(config: EntityConfig, role: Role, now: Instant, ids: SharedIds) -> Self {
        Self {
            config,
            role,
            ids,
            sessions: BTreeMap::new(),
            next_inbound: 0,
            calls: HashMap::new(),
            hop_ids: HashMap::new(),
            next_hop: 0,
            opened: Vec::new(),
            links: HashMap::new(),
            deliveries: HashMap::new(),
            next_delivery: 0,
            stats: Stats::default(),
            buffered: HashMap::new(),
            buffered_total: (0, 0),
            work: VecDeque::new(),
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
        self.sessions.is_empty() && self.links.is_empty() && self.opened.is_empty()
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
        let result = self.route(input);
        let work = self.run_work();
        self.collect_finished();
        let unbound = self.links.values().filter_map(|l| l.unused_until).min();
        self.timeout = self.sessions.values().filter_map(Node::poll_timeout).chain(unbound).min();
        result.and(work)
    }

    fn route(&mut self, input: Input) -> Result<(), UsageError> {
        match input {
            Input::SipReceived { flow, message } => {
                if let Some(slot) = self.sip_slot(flow, &message) {
                    self.feed(slot, Input::SipReceived { flow, message })?;
                }
            }
            Input::SipDatagram { flow, bytes } => {
                // RFC 3261 s.18.3: one message per datagram; its Call-ID picks the session.
                match sip::parse_datagram(bytes.clone(), &sip::Limits::default()) {
                    Ok(message) => {
                        if let Some(slot) = self.sip_slot(flow, &message) {
                            self.feed(slot, Input::SipDatagram { flow, bytes })?;
                        }
                    }
                    Err(error) => {
                        self.event(None, Event::PeerError { error: PeerError::SipDatagram(error) });
                    }
                }
            }
            Input::Connected { hop, conn } => {
                let Some(pos) = self.opened.iter().position(|l| l.opener == hop && l.conn.is_none()) else {
                    return Err(UsageError::UnknownHop);
                };
                self.opened[pos].conn = Some(conn);
                self.links.entry(conn).or_insert_with(|| Link::new(None));
                if self.opened[pos].users.is_empty() {
                    // Every session that wanted the link ended while it was being opened.
                    self.opened.remove(pos);
                    self.links.remove(&conn);
                    self.emit(Output::CloseLink { conn });
                    return Ok(());
                }
                let users: Vec<SessionHop> = self.opened[pos].users.iter().map(|(u, _)| *u).collect();
                for (slot, hop) in users {
                    self.work.push_back((slot, Input::Connected { hop, conn }));
                }
            }
            Input::ConnectFailed { hop } => {
                let Some(pos) = self.opened.iter().position(|l| l.opener == hop && l.conn.is_none()) else {
                    return Err(UsageError::UnknownHop);
                };
                let link = self.opened.remove(pos);
                for ((slot, hop), _) in link.users {
                    self.work.push_back((slot, Input::ConnectFailed { hop }));
                }
            }
            Input::Accepted { conn } => {
                self.links.insert(conn, Link::new(Some(self.later(self.config.bind_timeout))));
            }
            Input::MsrpReceived { conn, data } => self.msrp_received(conn, data),
            Input::MsrpClosed { conn } => self.link_closed(conn),
            Input::NonCpmAck { delivery, status } => {
                let (slot, delivery) = self.deliveries.remove(&delivery).ok_or(UsageError::UnknownDelivery)?;
                self.feed(slot, Input::NonCpmAck { delivery, status })?;
            }
            Input::Timeout => {
                self.close_unused_links();
                let slots: Vec<Slot> = self.sessions.keys().copied().collect();
                for slot in slots {
                    self.work.push_back((slot, Input::Timeout));
                }
            }
            Input::Command(command @ Command::SendMessage { session, .. }) => {
                if session.is_inbound() || self.sessions.contains_key(&session) {
                    return Err(UsageError::DuplicateSession);
                }
                self.new_session(session);
                self.feed(session, Input::Command(command))?;
            }
            Input::Command(Command::End { session }) => {
                if !self.sessions.contains_key(&session) {
                    return Err(UsageError::UnknownSession);
                }
                self.work.push_back((session, Input::Command(Command::End { session })));
            }
        }
        Ok(())
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
        let node = Node::new(self.config.clone(), self.role.clone(), self.now, self.ids.clone());
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

    /// `after` from now; a configured duration too long to add means a
    /// century on, not a panic.
    fn later(&self, after: Duration) -> Instant {
        let century = Duration::from_secs(100 * 365 * 86_400);
        self.now.checked_add(after).or_else(|| self.now.checked_add(century)).unwrap_or(self.now)
    }

    /// Every output leaves through here (and is counted).
    fn emit(&mut self, output: Output) {
        self.stats.output(&output);
        self.out.push_back(output);
    }

    /// The entity's counters and levels.
    pub(crate) fn stats(&self) -> Stats {
        let waiting: usize =
            self.links.values().flat_map(|l| &l.waiting).map(|t| t.head.len() + t.body.len() + t.end_line.len()).sum();
        let mut stats = self.stats.clone();
        stats.sessions = self.sessions.len();
        stats.links = self.links.len();
        stats.bytes_held = self.buffered_total.0;
        stats.bytes_queued = self.buffered_total.1 + waiting;
        stats
    }

    /// Feeds one session now, then everything its outputs cause.
    fn feed(&mut self, slot: Slot, input: Input) -> Result<(), UsageError> {
        self.work.push_back((slot, input));
        self.run_work()
    }

    fn run_work(&mut self) -> Result<(), UsageError> {
        let mut result = Ok(());
        while let Some((slot, input)) = self.work.pop_front() {
            let now = self.now;
            let Some(node) = self.sessions.get_mut(&slot) else { continue };
            if let Err(error) = node.handle(now, input) {
                result = result.and(Err(error));
            }
            self.drain(slot);
        }
        result
    }

    /// Takes a session's outputs: links through the registry, the rest out.
    fn drain(&mut self, slot: Slot) {
        self.measure(slot);
        while let Some(output) = self.sessions.get_mut(&slot).and_then(Node::poll_output) {
            match output {
                Output::SipTransmit { flow, bytes } => {
                    self.learn_call(slot, &bytes);
                    self.emit(Output::SipTransmit { flow, bytes });
                }
                Output::Connect { hop, label, params, trigger } => self.connect(slot, hop, label, params, trigger),
                Output::CloseLink { conn } => self.release(slot, conn),
                Output::MsrpTransmit { conn, transmit } => self.write(conn, transmit),
                Output::Event { mut event, .. } => {
                    if let Event::DeliverToNonCpm { delivery, .. } = &mut event {
                        // The session's own id becomes one unique in the element.
                        let element = DeliveryId::new(self.next_delivery);
                        self.next_delivery += 1;
                        self.deliveries.insert(element, (slot, *delivery));
                        *delivery = element;
                    }
                    self.event(Some(slot), event);
                }
            }
        }
    }

    /// Brings the session's held and queued bytes into the totals.
    fn measure(&mut self, slot: Slot) {
        let now = self.sessions.get(&slot).map_or((0, 0), Node::buffered);
        let before = self.buffered.insert(slot, now).unwrap_or((0, 0));
        self.buffered_total.0 = self.buffered_total.0 + now.0 - before.0;
        self.buffered_total.1 = self.buffered_total.1 + now.1 - before.1;
    }

    /// Writes a frame piece on `conn`, after the frame being written there.
    fn write(&mut self, conn: ConnId, transmit: Transmit) {
        let Some(link) = self.links.get_mut(&conn) else {
            self.emit(Output::MsrpTransmit { conn, transmit });
            return;
        };
        if !link.may_write(&transmit) {
            link.waiting.push_back(transmit);
            return;
        }
        link.wrote(&transmit);
        // The link stays borrowed while its waiting frames go out: emit by parts.
        let (stats, out) = (&mut self.stats, &mut self.out);
        let mut emit = |transmit| {
            let output = Output::MsrpTransmit { conn, transmit };
            stats.output(&output);
            out.push_back(output);
        };
        emit(transmit);
        while let Some(next) = link.next_waiting() {
            link.wrote(&next);
            emit(next);
        }
    }

    /// A request a session sends starts a dialog or transaction whose
    /// responses and in-dialog requests come back with its Call-ID.
    fn learn_call(&mut self, slot: Slot, bytes: &Bytes) {
        if bytes.starts_with(b"SIP/") {
            return;
        }
        if let Ok(message) = Message::parse(bytes.clone()) {
            if let Some(call_id) = message.call_id() {
                if !self.calls.contains_key(call_id) {
                    self.calls.insert(call_id.to_owned(), slot);
                }
            }
        }
    }

    fn element_hop(&mut self, session_hop: SessionHop) -> HopId {
        if let Some(hop) = self.hop_ids.get(&session_hop) {
            return *hop;
        }
        let hop = HopId::new(self.next_hop);
        self.next_hop = self.next_hop.wrapping_add(1);
        self.hop_ids.insert(session_hop, hop);
        hop
    }

    fn connect(
        &mut self,
        slot: Slot,
        hop: HopId,
        label: String,
        params: cpm_negotiation::ConnectParams,
        trigger: Trigger,
    ) {
        // RFC 4975 s.5.4: "If the connection is to a remote host and one
        // associated with the same host, port, and URI scheme already exists,
        // the endpoint SHOULD reuse that connection."
        let existing = self.opened.iter().position(|l| l.key == params.key);
        if let Some(pos) = existing.filter(|_| self.config.reuse_links) {
            let link = &mut self.opened[pos];
            link.users.push(((slot, hop), label.clone()));
            let conn = link.conn;
            self.event(Some(slot), Event::LinkReused { hop: label, trigger, params, conn });
            if let Some(conn) = conn {
                self.work.push_back((slot, Input::Connected { hop, conn }));
            }
            return;
        }
        let element = self.element_hop((slot, hop));
        self.opened.push(OpenedLink {
            key: params.key.clone(),
            conn: None,
            opener: element,
            users: vec![((slot, hop), label.clone())],
        });
        self.emit(Output::Connect { hop: element, label, params, trigger });
    }

    /// A session let go of a link it connected: the link closes when no hop
    /// is left on it.
    fn release(&mut self, slot: Slot, conn: ConnId) {
        let Some(pos) = self.opened.iter().position(|l| l.conn == Some(conn)) else {
            self.emit(Output::CloseLink { conn });
            return;
        };
        let link = &mut self.opened[pos];
        let node = self.sessions.get(&slot);
        // The user that let go: this session's hop that is now closed.
        let user = link
            .users
            .iter()
            .position(|((s, h), _)| *s == slot && node.map_or(true, |n| n.hop_closed(*h)))
            .or_else(|| link.users.iter().position(|((s, _), _)| *s == slot));
        let Some(user) = user else { return };
        let (_, label) = link.users.remove(user);
        if link.users.is_empty() {
            self.opened.remove(pos);
            self.links.remove(&conn);
            self.emit(Output::CloseLink { conn });
        } else {
            self.event(Some(slot), Event::LinkReleased { hop: label, conn });
        }
    }

    fn msrp_received(&mut self, conn: ConnId, data: Bytes) {
        let Some(link) = self.links.get_mut(&conn) else { return };
        link.framer.handle_segment(data);
        let mut events = Vec::new();
        let mut broken = None;
        while let Some(event) = link.framer.poll_event() {
            match event {
                Ok(event) => events.push(event),
                Err(error) => {
                    broken = Some(error);
                    break;
                }
            }
        }
        let mut touched: Vec<Slot> = Vec::new();
        for event in events {
            if let FramerEvent::Head(head) = &event {
                let raw = head.to_path().next().unwrap_or_default();
                let sessions = &self.sessions;
                let Some(link) = self.links.get_mut(&conn) else { return };
                // The To-Path as written names a session seen on this link (no
                // URI parse or s.6.1 comparison per frame); otherwise look it up.
                let cached = link.routes.iter().find(|(r, _)| r == raw).map(|(_, slot)| *slot);
                let slot = cached.filter(|slot| sessions.contains_key(slot)).or_else(|| {
                    let to = head.to_path_uris().next()?;
                    let slot = sessions.iter().find(|(_, n)| n.owns_uri(&to)).map(|(slot, _)| *slot)?;
                    if link.routes.len() < MAX_ROUTES {
                        link.routes.push((raw.to_owned(), slot));
                    }
                    Some(slot)
                });
                link.current = slot;
                if slot.is_some() {
                    link.unused_until = None;
                }
                if slot.is_none() {
                    // RFC 4975 s.5.4: "If no match exists, the node MUST reject
                    // the request with a 481 response."
                    if let Some(transmit) = msrp_core::session::refusal(head, 481) {
                        self.emit(Output::MsrpTransmit { conn, transmit });
                    }
                }
            }
            let Some(slot) = self.links.get(&conn).and_then(|l| l.current) else { continue };
            let now = self.now;
            if let Some(node) = self.sessions.get_mut(&slot) {
                node.handle_frame(now, conn, event);
                if !touched.contains(&slot) {
                    touched.push(slot);
                }
            }
        }
        for slot in touched {
            if let Some(node) = self.sessions.get_mut(&slot) {
                node.settle();
            }
            self.drain(slot);
        }
        if let Some(error) = broken {
            // RFC 4975 s.6: once framing is lost nothing more on the link can be
            // read; it is closed at once, and its sessions lose it.
            self.event(None, Event::PeerError { error: PeerError::MsrpFraming(error) });
            self.emit(Output::CloseLink { conn });
            self.link_closed(conn);
        }
    }

    /// Links a peer opened that no session of ours used for
    /// [`EntityConfig::bind_timeout`] are closed: a peer cannot hold
    /// connections by opening them and saying nothing, or by keeping them
    /// open once their sessions ended (RFC 4975 s.4: "close these
    /// connections when no sessions have used them for some period of time").
    fn close_unused_links(&mut self) {
        let now = self.now;
        let idle: Vec<ConnId> =
            self.links.iter().filter(|(_, l)| l.unused_until.is_some_and(|t| t <= now)).map(|(c, _)| *c).collect();
        for conn in idle {
            self.links.remove(&conn);
            let after = self.config.bind_timeout;
            self.event(None, Event::PeerError { error: PeerError::LinkUnused { conn, after } });
            self.emit(Output::CloseLink { conn });
        }
    }

    /// Accepted links that no session but those of `ending` uses get their
    /// unused deadline again.
    fn watch_unused_links(&mut self, ending: &[Slot]) {
        let deadline = self.later(self.config.bind_timeout);
        let sessions = &self.sessions;
        for (conn, link) in &mut self.links {
            if link.accepted && link.unused_until.is_none() {
                let used = sessions.iter().any(|(slot, n)| !ending.contains(slot) && n.has_conn(*conn));
                if !used {
                    link.unused_until = Some(deadline);
                }
            }
        }
    }

    /// A link is gone: every session on it is told.
    fn link_closed(&mut self, conn: ConnId) {
        self.links.remove(&conn);
        self.opened.retain(|l| l.conn != Some(conn));
        let slots: Vec<Slot> = self.sessions.iter().filter(|(_, n)| n.has_conn(conn)).map(|(slot, _)| *slot).collect();
        for slot in slots {
            self.work.push_back((slot, Input::MsrpClosed { conn }));
        }
    }

    /// Sessions with nothing left go.
    fn collect_finished(&mut self) {
        let done: Vec<Slot> = self.sessions.iter().filter(|(_, n)| n.is_idle()).map(|(s, _)| *s).collect();
        if !done.is_empty() {
            self.watch_unused_links(&done);
        }
        for slot in done {
            self.sessions.remove(&slot);
            self.measure(slot);
            self.buffered.remove(&slot);
            self.calls.retain(|_, s| *s != slot);
            // A link still being opened for this session is closed when it
            // comes up (when no other session waits for it).
            for link in &mut self.opened {
                link.users.retain(|((s, _), _)| *s != slot);
            }
            let unused: Vec<ConnId> =
                self.opened.iter().filter(|l| l.users.is_empty()).filter_map(|l| l.conn).collect();
            for conn in unused {
                self.opened.retain(|l| l.conn != Some(conn));
                self.links.remove(&conn);
                self.emit(Output::CloseLink { conn });
            }
            for link in self.links.values_mut() {
                link.routes.retain(|(_, s)| *s != slot);
            }
            self.deliveries.retain(|_, (s, _)| *s != slot);
            let gone: Vec<SessionHop> = self.hop_ids.keys().filter(|(s, _)| *s == slot).copied().collect();
            for session_hop in gone {
                self.hop_ids.remove(&session_hop);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::ids::SimulationIds;
    use crate::Outcome;
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

    fn piece(id: &TransactionId, head: &str, body: &str, end: &str) -> Transmit {
        Transmit {
            transaction_id: id.clone(),
            head: Bytes::copy_from_slice(head.as_bytes()),
            body: Bytes::copy_from_slice(body.as_bytes()),
            end_line: Bytes::copy_from_slice(end.as_bytes()),
        }
    }

    /// RFC 4975 s.7.1: a frame runs from its start line to its end-line; a
    /// relay writing chunk X piece by piece on a shared link holds the
    /// other sessions' frames back until X's end-line, then lets them out
    /// in order (and the continuation of a held frame overtakes frames
    /// queued behind its head).
    #[test]
    fn frames_on_a_shared_link_never_interleave() {
        let mut server = receiver();
        let conn = ConnId::new(7);
        server.handle(epoch(), Input::Accepted { conn }).unwrap();
        let mut ids = SimulationIds::new(9);
        let [x, y, z] = [(); 3].map(|()| TransactionId::generate(&mut ids));
        server.write(conn, piece(&x, "X-head ", "", ""));
        server.write(conn, piece(&y, "Y-head ", "", ""));
        server.write(conn, piece(&z, "Z-whole ", "z", "Z-end "));
        server.write(conn, piece(&y, "", "y", ""));
        server.write(conn, piece(&x, "", "x", ""));
        server.write(conn, piece(&y, "", "", "Y-end "));
        server.write(conn, piece(&x, "", "", "X-end "));
        let mut wire = String::new();
        for output in outputs(&mut server) {
            let Output::MsrpTransmit { conn: c, transmit } = output else { panic!("{output:?}") };
            assert_eq!(c, conn);
            for part in [transmit.head, transmit.body, transmit.end_line] {
                wire.push_str(std::str::from_utf8(&part).unwrap());
            }
        }
        assert_eq!(wire, "X-head xX-end Y-head yY-end Z-whole zZ-end ");
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
    fn answered_sender() -> (Server, SessionId, HopId, String) {
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
    /// and the link's cache of spellings stays bounded.
    #[test]
    fn to_path_spellings_are_cached_up_to_a_bound() {
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
            let answered = outputs(&mut server).iter().any(|o| {
                matches!(o, Output::MsrpTransmit { transmit, .. } if transmit.head.starts_with(format!("MSRP {id} 200").as_bytes()))
            });
            assert!(answered, "spelling {host} reached the session");
        }
        assert_eq!(server.links[&conn].routes.len(), MAX_ROUTES);
        let node = server.sessions.values().next().unwrap();
        assert!(node.spellings(conn) <= 16, "the session's own cache is bounded too: {}", node.spellings(conn));
        assert_eq!(server.links[&conn].unused_until, None, "the link is bound: no deadline");
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
