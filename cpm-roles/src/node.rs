//! The machine every entity is built on: a SIP user agent (one inbound leg,
//! any number of outbound legs), one [`HopLink`] plus one MSRP [`Session`]
//! per hop, and the role's glue (sender, receiver, or back-to-back relay).

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use cpm_negotiation::cpim::{self, Address};
use cpm_negotiation::imdn::{self, DeliveryStatus, Imdn, Notification};
use cpm_negotiation::{
    answer_offer, build_offer, check_answer, AckPolicy, AnswerCheck, AnswerPolicy, Hop, HopConfig, HopInput, HopLink,
    HopOutput, LocalMedia, MediaType, MsrpSdp, SendIntent, Side, Trigger,
};
use msrp_core::reassembly::{DeliveryMode, ReassemblyConfig};
use msrp_core::session::{self, Command as MsrpCommand, Event as MsrpEvent, LinkRole, MessageHandle, Session};
use msrp_core::uri::Scheme;
use msrp_core::{FailureReport, FramerEvent, MessageId, MsrpUri};
use sip_lite::multipart::{Multipart, Part};
use sip_lite::resource_lists::{self, Entry};
use sip_lite::sip::Message;
use sip_lite::ua::{self, LegId, UaConfig, UserAgent};

use crate::config::{entity_capabilities, AddressRule, Downstream, EntityConfig, IwfConfig, IwfReport};
use crate::error::UsageError;
use crate::ids::{ConnId, DeliveryId, FlowId, HopId, SharedIds};
use crate::interworking::{self, NonCpmMessage};
use crate::{Command, Event, Input, Outcome, Output};

#[derive(Clone, Debug)]
pub(crate) enum Role {
    /// Client A: sends one message on its outbound leg.
    Sender { flow: FlowId, hop: Hop, label: String },
    /// Client B: answers (or rejects with `reject`), reassembles, reports.
    Receiver { hop: Hop, label: String, reject: Option<u16> },
    /// IWF: UAS + MSRP endpoint handing whole messages to a non-CPM system.
    Iwf { hop: Hop, label: String, iwf: IwfConfig },
    /// PF or CF: inbound leg relayed to one or more outbound legs.
    /// With `groups`, `down` is chosen per INVITE by its Request-URI; an
    /// ad-hoc list (CF) is routed member by member with `rules`.
    Relay {
        up_hop: Hop,
        up_label: String,
        down: Vec<Downstream>,
        aggregate: bool,
        groups: Vec<(String, Vec<Downstream>)>,
        rules: Vec<AddressRule>,
        /// The upstream hop's label per Request-URI (a PF serving several
        /// users); `up_label` otherwise.
        user_labels: Vec<(String, String)>,
    },
}

struct HopState {
    label: String,
    side: Side,
    link: HopLink,
    local_uri: MsrpUri,
    offer: Option<LocalMedia>,
    session: Option<Session>,
    conn: Option<ConnId>,
    /// Whether this side opened the link (it closes it).
    opened: bool,
    /// The hop's work is over: the message crossed it and its REPORT (or,
    /// at the final receiver, the delivery) happened. Losing the link after
    /// that is no failure.
    done: bool,
    /// Commands for the session before it exists (a relay got data early).
    pending: Vec<MsrpCommand>,
    closed: bool,
}

struct Leg {
    leg: LegId,
    hop: usize,
    answered: bool,
    acked: bool,
    ended: bool,
    /// A downstream member's outcome is known through a REPORT.
    reported: bool,
    /// The leg ended before its member's REPORT (rejected, timed out, BYE).
    failed: bool,
    /// The member this leg reaches (its Request-URI), named in IMDNs.
    member: String,
    /// Controlling: the member's outcome (its REPORT's status, or the status
    /// that ended its leg).
    outcome: Option<u16>,
    /// Controlling: the member's IMDN went upstream.
    imdn_sent: bool,
    /// Controlling: since when the member's window is full.
    full_since: Option<Instant>,
}

impl Leg {
    fn new(leg: LegId, hop: usize, member: String) -> Self {
        Self {
            leg,
            hop,
            answered: false,
            acked: false,
            ended: false,
            reported: false,
            failed: false,
            member,
            outcome: None,
            imdn_sent: false,
            full_since: None,
        }
    }
}

/// The `DateTime` an IMDN carries when the message it answers had none (A
/// sends plain content, not CPIM; RFC 5438 s.11.1.2 still wants the element,
/// and this library has no clock).
const UNKNOWN_DATETIME: &str = "1970-01-01T00:00:00Z";

/// One MSRP connection of this machine: the hops whose sessions it carries
/// (several when the [`crate::Server`] reuses it, RFC 4975 s.5.4) and the
/// hop whose frame is being read.
#[derive(Default)]
struct Conn {
    hops: Vec<usize>,
    current: Option<usize>,
    /// The first To-Path URI as written in frames for each hop bound here.
    routes: Vec<(String, usize)>,
}

pub(crate) struct Node {
    config: EntityConfig,
    role: Role,
    ua: UserAgent,
    ids: SharedIds,
    hops: Vec<HopState>,
    up: Option<Leg>,
    down: Vec<Leg>,
    conns: HashMap<ConnId, Conn>,
    out: VecDeque<Output>,
    now: Instant,
    upstream_acked: bool,
    answer: Option<Bytes>,
    answer_sent: bool,
    /// Sender: the message to send once the session exists.
    message: Option<(String, Bytes)>,
    next_handle: u64,
    /// Relay: downstream handle per upstream Message-ID, until the message
    /// is settled.
    relayed: HashMap<MessageId, MessageHandle>,
    /// Controlling: member outcomes per message (REPORT statuses), until the
    /// REPORT went upstream.
    outcomes: HashMap<MessageId, Vec<u16>>,
    /// IWF: delivered messages waiting for the non-CPM acknowledgement.
    iwf_pending: Vec<(DeliveryId, usize, MessageId, u64)>,
    /// The next [`DeliveryId`] this session hands out (the element renames it).
    next_delivery: u64,
    /// Sender: outcomes received.
    done: bool,
    /// The From URI of the upstream INVITE (the sender, for IMDNs).
    peer_uri: String,
    /// The To URI of the upstream INVITE (an IWF's non-CPM recipient).
    recipient_uri: String,
    /// IWF: the SMPP sequence number of the next `submit_sm`.
    sms_sequence: u32,
    /// REPORTs held until the messages sent before them on the same hop are
    /// through (a REPORT must not overtake the IMDNs it concludes).
    deferred_reports: Vec<(usize, MsrpCommand)>,
    /// Relay: every downstream leg ended; the upstream leg ends (BYE) once
    /// what is owed upstream (IMDNs, REPORTs) is through.
    end_up_pending: bool,
}

impl Node {
    fn event(&mut self, event: Event) {
        self.out.push_back(Output::Event { session: None, event });
    }

    pub(crate) fn new(config: EntityConfig, role: Role, now: Instant, ids: SharedIds) -> Self {
        let contact = format!("sip:{}", config.host);
        let mut ua_config = UaConfig::new(&config.host, &contact);
        ua_config.set_auto_ack(false).set_capabilities(entity_capabilities());
        let ua = UserAgent::new(ua_config, now, Box::new(ids.clone()));
        Self {
            config,
            role,
            ua,
            ids,
            hops: Vec::new(),
            up: None,
            down: Vec::new(),
            conns: HashMap::new(),
            out: VecDeque::new(),
            now,
            upstream_acked: false,
            answer: None,
            answer_sent: false,
            message: None,
            next_handle: 1,
            relayed: HashMap::new(),
            outcomes: HashMap::new(),
            done: false,
            iwf_pending: Vec::new(),
            next_delivery: 0,
            peer_uri: String::new(),
            recipient_uri: String::new(),
            sms_sequence: 1,
            deferred_reports: Vec::new(),
            end_up_pending: false,
        }
    }

    /// The bytes its MSRP sessions hold (reassembly) and have queued to
    /// send (with what waits for a session not yet made).
    pub(crate) fn buffered(&self) -> (usize, usize) {
        let mut held = 0;
        let mut queued = 0;
        for hop in &self.hops {
            if let Some(session) = &hop.session {
                held += session.held_bytes();
                queued += session.queued_bytes();
            }
            for command in &hop.pending {
                queued += match command {
                    MsrpCommand::Send { body, .. } => body.len(),
                    MsrpCommand::StreamData { data, .. } => data.len(),
                    _ => 0,
                };
            }
        }
        (held, queued)
    }

    /// Whether nothing is left: no SIP leg, no open link, no session with work.
    pub(crate) fn is_idle(&self) -> bool {
        self.ua.is_idle()
            && self.conns.is_empty()
            && self.hops.iter().all(|h| h.session.as_ref().map_or(true, |s| s.open_transactions() == 0))
    }

    pub(crate) fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.now = self.now.max(now);
        let now = self.now;
        match input {
            Input::SipReceived { flow, message } => {
                let transport = self.config.transport(flow);
                self.ua_input(ua::Input::Received { flow, transport, message })?;
            }
            Input::SipDatagram { flow, bytes } => {
                // On a datagram transport each read is one message (RFC 3261 s.18.3).
                self.ua_input(ua::Input::Datagram { flow, bytes })?;
            }
            Input::Connected { hop, conn } => {
                let index = usize::try_from(hop.get()).map_err(|_| UsageError::UnknownHop)?;
                if index >= self.hops.len() {
                    return Err(UsageError::UnknownHop);
                }
                if self.hops[index].closed {
                    // The hop ended while its link was being opened: close it at once.
                    self.out.push_back(Output::CloseLink { conn });
                } else {
                    // A reused link (RFC 4975 s.5.4) carries this hop beside the others.
                    self.conns.entry(conn).or_default().hops.push(index);
                    self.bind(index, conn, true);
                }
            }
            Input::ConnectFailed { hop } => {
                let index = usize::try_from(hop.get()).map_err(|_| UsageError::UnknownHop)?;
                if index >= self.hops.len() {
                    return Err(UsageError::UnknownHop);
                }
                self.hop_input(index, HopInput::LinkDown);
            }
            // The [`crate::Server`] around this machine accepts links and frames
            // their bytes; frames come in through [`Node::handle_frame`].
            Input::Accepted { .. } | Input::MsrpReceived { .. } => return Err(UsageError::WrongState),
            Input::MsrpClosed { conn } => {
                let hops = self.conns.remove(&conn).map(|c| c.hops).unwrap_or_default();
                for index in hops {
                    let hop = &mut self.hops[index];
                    let ended_here = hop.closed;
                    hop.conn = None;
                    hop.closed = true;
                    if let Some(s) = hop.session.as_mut() {
                        let _ = s.handle(now, session::Input::LinkDown);
                    }
                    // A link lost before its hop's work was done (the message
                    // and its REPORT across): the hop fails and its leg ends.
                    if !ended_here && !self.hops[index].done {
                        self.pump();
                        self.event(Event::HopFailed { hop: self.hops[index].label.clone() });
                        self.hop_lost(index);
                    }
                }
            }
            Input::NonCpmAck { delivery, status } => self.non_cpm_ack(delivery, status)?,
            Input::Timeout => {
                self.ua_input(ua::Input::Timeout)?;
                for hop in &mut self.hops {
                    if let Some(s) = hop.session.as_mut() {
                        let _ = s.handle(now, session::Input::Timeout);
                    }
                }
            }
            Input::Command(Command::SendMessage { target, recipients, content_type, body, .. }) => {
                self.send_message(target, &recipients, content_type, body)?;
            }
            Input::Command(Command::End { .. }) => self.end_session(),
        }
        self.pump();
        Ok(())
    }

    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let sessions = self.hops.iter().filter_map(|h| h.session.as_ref().and_then(Session::poll_timeout));
        let slow = self.config.slow_member.and_then(|slow| {
            let waiting = self.down.iter().filter(|l| !l.ended && !self.hops.get(l.hop).is_some_and(|h| h.closed));
            waiting.filter_map(|l| l.full_since).min().map(|since| since + slow.after)
        });
        self.ua.poll_timeout().into_iter().chain(sessions).chain(slow).min()
    }

    /// Controlling: tracks each member's full window and drops a member
    /// whose window stayed full past [`SlowMember::after`].
    fn check_slow_members(&mut self) {
        let Some(slow) = self.config.slow_member else { return };
        if !matches!(self.role, Role::Relay { aggregate: true, .. }) {
            return;
        }
        let now = self.now;
        for pos in 0..self.down.len() {
            let index = self.down[pos].hop;
            // An ended (or ending) member has nothing left to wait for.
            if self.down[pos].ended || self.hops[index].closed {
                continue;
            }
            let open = self.hops[index].session.as_ref().map_or(0, Session::open_transactions);
            if open < slow.window.max(1) {
                self.down[pos].full_since = None;
                continue;
            }
            let since = *self.down[pos].full_since.get_or_insert(now);
            if since + slow.after <= now {
                self.down[pos].full_since = None;
                let hop = self.hops[index].label.clone();
                self.event(Event::HopFailed { hop });
                self.hops[index].done = true;
                self.end_down(pos);
            }
        }
    }

    // ----- helpers ----------------------------------------------------------

    fn ua_input(&mut self, input: ua::Input) -> Result<(), UsageError> {
        self.ua.handle(self.now, input).map_err(|_| UsageError::Sip)
    }

    fn new_hop(&mut self, hop: Hop, label: &str, side: Side) -> Result<usize, UsageError> {
        let (opener, _, trigger) = self.config.preset.hop(hop);
        let link = HopLink::new(HopConfig { side, opener, trigger }).map_err(|_| UsageError::Preset)?;
        let local_uri =
            session::new_local_uri(Scheme::Msrp, &self.config.host, self.config.msrp_port, "tcp", &mut self.ids)
                .map_err(|_| UsageError::Host)?;
        self.hops.push(HopState {
            label: label.to_owned(),
            side,
            link,
            local_uri,
            offer: None,
            session: None,
            conn: None,
            opened: false,
            done: false,
            pending: Vec::new(),
            closed: false,
        });
        Ok(self.hops.len() - 1)
    }

    fn sdp(&self, media: &LocalMedia) -> Bytes {
        let origin = format!("- {} 1 IN IP4 {}", self.hops.len(), self.config.host);
        media.to_sdp(&origin).map(|d| d.to_bytes()).unwrap_or_default()
    }

    fn hop_input(&mut self, index: usize, input: HopInput) {
        if self.hops[index].link.handle(input).is_err() {
            self.event(Event::HopFailed { hop: self.hops[index].label.clone() });
        }
    }

    fn make_session(&mut self, index: usize, remote_path: Vec<MsrpUri>, opener: Side, streaming: bool) {
        let hop = &self.hops[index];
        let role = if opener == hop.side { LinkRole::Active } else { LinkRole::Passive };
        let mut config = session::SessionConfig::new(hop.local_uri.clone(), remote_path, role);
        config.chunk_size = self.config.chunk_size;
        config.max_chunk_size = self.config.max_chunk_size;
        config.reassembly = ReassemblyConfig {
            mode: if streaming { DeliveryMode::Streaming } else { DeliveryMode::Buffered },
            ..ReassemblyConfig::default()
        };
        config.report_timeout = self.config.report_timeout;
        // A relay hop does not report itself: the final receiver does, and
        // the relay re-addresses that REPORT upstream (SPEC "Acknowledgements").
        config.success_reports = match &self.role {
            Role::Relay { .. } => false,
            Role::Iwf { iwf, .. } => iwf.report == IwfReport::AtMediaEnd,
            _ => true,
        };
        let mut session = Session::new(config, self.now, Box::new(self.ids.clone()));
        let pending = std::mem::take(&mut self.hops[index].pending);
        for command in pending {
            let _ = session.handle(self.now, session::Input::Command(command));
        }
        self.hops[index].session = Some(session);
    }

    fn session_command(&mut self, index: usize, command: MsrpCommand) {
        let now = self.now;
        let hop = &mut self.hops[index];
        match hop.session.as_mut() {
            Some(s) => {
                let _ = s.handle(now, session::Input::Command(command));
            }
            None => hop.pending.push(command),
        }
    }

    /// A REPORT on hop `index`, held while messages sent before it on that
    /// hop are still going (so that the IMDNs a relay or the CF sent reach
    /// the sender before the REPORT that ends its wait).
    fn send_report(&mut self, index: usize, command: MsrpCommand) {
        self.hops[index].done = true;
        let busy = self.deferred_reports.iter().any(|(i, _)| *i == index)
            || self.hops[index].session.as_ref().is_some_and(|s| s.outgoing_messages() > 0);
        if busy {
            self.deferred_reports.push((index, command));
        } else {
            self.session_command(index, command);
        }
    }

    /// Whether nothing more is owed on the upstream hop (no held REPORT, no
    /// message still going, or no link left to carry them).
    fn upstream_flushed(&self) -> bool {
        let Some(index) = self.up.as_ref().map(|l| l.hop) else { return true };
        let session = self.hops[index].session.as_ref();
        let link_gone = self.hops[index].closed || session.map_or(true, |s| !s.is_link_up());
        link_gone
            || (!self.deferred_reports.iter().any(|(i, _)| *i == index)
                && session.map_or(true, |s| s.outgoing_messages() == 0))
    }

    /// Sends the held REPORTs whose hop has nothing more going before them.
    fn flush_reports(&mut self) -> bool {
        let mut moved = false;
        let mut k = 0;
        while k < self.deferred_reports.len() {
            let index = self.deferred_reports[k].0;
            let first = self.deferred_reports.iter().position(|(i, _)| *i == index) == Some(k);
            let session = self.hops[index].session.as_ref();
            let free = session.map_or(true, |s| s.outgoing_messages() == 0 || !s.is_link_up());
            if first && free {
                let (index, command) = self.deferred_reports.remove(k);
                self.session_command(index, command);
                moved = true;
            } else {
                k += 1;
            }
        }
        moved
    }

    /// Sends `body` as a new message on hop `index` (an IMDN, or a message a
    /// relay passes upstream), asking for no success REPORT.
    fn send_on(&mut self, index: usize, content_type: String, body: Bytes) {
        let handle = MessageHandle::new(self.next_handle);
        self.next_handle += 1;
        let command =
            MsrpCommand::Send { handle, content_type, body, success_report: false, failure_report: FailureReport::Yes };
        self.session_command(index, command);
    }

    /// An IMDN delivery notification (RFC 5438 s.7.2.1: `message/imdn+xml` in
    /// CPIM with `Content-Disposition: notification`) from `member` to `to`
    /// about `message_id`.
    fn imdn(&mut self, member: &str, to: &str, message_id: &MessageId, delivered: bool) -> Option<Bytes> {
        let notification =
            Notification::Delivery(if delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Failed });
        let imdn = Imdn {
            message_id: message_id.as_str().to_owned(),
            datetime: UNKNOWN_DATETIME.to_owned(),
            // RFC 5438 s.11.1.3: the final recipient, which names the member.
            recipient_uri: (!member.is_empty()).then(|| member.to_owned()),
            original_recipient_uri: None,
            subject: None,
            notification,
        };
        let id = MessageId::generate(&mut self.ids);
        let from = if member.is_empty() { to } else { member };
        let builder = imdn::wrap(&imdn, Address::new(from), Address::new(to), id.as_str(), None).ok()?;
        builder.build().ok()
    }

    /// Controlling: one IMDN per member whose outcome is known, on the
    /// sender's session (SPEC "Acknowledgements": never a failure REPORT for
    /// one member).
    fn member_imdns(&mut self) {
        if !matches!(self.role, Role::Relay { aggregate: true, .. }) {
            return;
        }
        let Some(up) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.hop) else { return };
        let mut messages: Vec<MessageId> = self.relayed.keys().cloned().collect();
        messages.sort();
        let Some(message_id) = messages.first().cloned() else { return };
        let to = self.peer_uri.clone();
        for pos in 0..self.down.len() {
            let Some(status) = self.down[pos].outcome.filter(|_| !self.down[pos].imdn_sent) else { continue };
            self.down[pos].imdn_sent = true;
            let member = self.down[pos].member.clone();
            if let Some(body) = self.imdn(&member, &to, &message_id, status == 200) {
                self.send_on(up, cpim::CONTENT_TYPE.to_owned(), body);
            }
        }
    }

    /// [`Command::End`]: every leg ends (CANCEL, refusal or BYE, as
    /// the UA's `End` does for the leg's state).
    fn end_session(&mut self) {
        if let Some(leg) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.leg) {
            let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
        }
        for pos in 0..self.down.len() {
            if !self.down[pos].ended {
                self.end_down(pos);
            }
        }
    }

    /// Hop `index` lost its link (or its message) before its work was done:
    /// its SIP leg ends; [`Node::ended`] then does the rest (a member's
    /// failed outcome, the sender's outcome, or the relay's other side).
    fn hop_lost(&mut self, index: usize) {
        if self.hops[index].done {
            return;
        }
        self.hops[index].done = true;
        if let Some(leg) = self.up.as_ref().filter(|l| l.hop == index && !l.ended).map(|l| l.leg) {
            let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
        } else if let Some(pos) = self.down.iter().position(|l| l.hop == index && !l.ended) {
            if matches!(self.role, Role::Sender { .. }) && !self.done {
                self.done = true;
                let label = self.hops[index].label.clone();
                self.event(Event::Outcome { hop: label, outcome: Outcome::LinkLost });
            }
            self.end_down(pos);
        }
    }

    fn bind(&mut self, index: usize, conn: ConnId, opened: bool) {
        let now = self.now;
        let hop = &mut self.hops[index];
        hop.conn = Some(conn);
        hop.opened = opened;
        if let Some(s) = hop.session.as_mut() {
            let _ = s.handle(now, session::Input::LinkUp);
        }
        self.hop_input(index, HopInput::LinkUp);
    }

    fn close_hop(&mut self, index: usize) {
        let now = self.now;
        let hop = &mut self.hops[index];
        if hop.closed {
            return;
        }
        // The hop is over: a link of it that comes up later is closed at once;
        // the passive side's link is closed by its opener.
        hop.closed = true;
        if hop.opened {
            if let Some(conn) = hop.conn.take() {
                if let Some(s) = hop.session.as_mut() {
                    let _ = s.handle(now, session::Input::LinkDown);
                }
                // One CloseLink per hop this side connected: on a reused link
                // it releases this hop's use ([`crate::Server`] closes the link
                // when its last hop lets go).
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.hops.retain(|&h| h != index);
                    c.routes.retain(|&(_, h)| h != index);
                    if c.current == Some(index) {
                        c.current = None;
                    }
                    if c.hops.is_empty() {
                        self.conns.remove(&conn);
                    }
                }
                self.out.push_back(Output::CloseLink { conn });
            }
        }
    }

    /// Whether one of this machine's hops has the session URI `uri`.
    pub(crate) fn owns_uri(&self, uri: &MsrpUri) -> bool {
        self.hops.iter().any(|h| h.local_uri == *uri)
    }

    /// Whether hop `hop` is over (closed, or never existed).
    pub(crate) fn hop_closed(&self, hop: HopId) -> bool {
        usize::try_from(hop.get()).ok().and_then(|i| self.hops.get(i)).map_or(true, |h| h.closed)
    }

    /// [`Node::frame`] as an input: one framer event a [`crate::Server`]
    /// read on `conn`; what it causes comes out with [`Node::settle`], once
    /// the whole read is in (as [`Input::MsrpReceived`] does).
    pub(crate) fn handle_frame(&mut self, now: Instant, conn: ConnId, event: FramerEvent) {
        self.now = self.now.max(now);
        self.frame(conn, event);
    }

    /// Runs every inner machine after [`Node::handle_frame`].
    pub(crate) fn settle(&mut self) {
        self.pump();
    }

    /// Whether connection `conn` is known here.
    pub(crate) fn has_conn(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    /// One framer event read on `conn` (framed here, or by a [`crate::Server`]
    /// that routed it here by its To-Path). A head selects the hop whose
    /// session URI is the first To-Path URI (RFC 4975 s.7.2: a response's
    /// To-Path is our URI too); body pieces and the end-line follow it.
    pub(crate) fn frame(&mut self, conn: ConnId, event: FramerEvent) {
        if let FramerEvent::Head(head) = &event {
            let raw = head.to_path().next().unwrap_or_default();
            if let Some(c) = self.conns.get_mut(&conn) {
                // The To-Path as written selects a hop bound here already (no
                // URI parse or s.6.1 comparison per frame).
                c.current = c.routes.iter().find(|(r, _)| r == raw).map(|(_, index)| *index);
                if c.current.is_some_and(|i| self.hops[i].conn == Some(conn)) {
                    return self.frame_body(conn, event);
                }
                c.current = None;
            }
            let Some(to) = head.to_path_uris().next() else { return };
            let index = self.hops.iter().position(|h| h.local_uri == to);
            let refuse = match index.map(|i| (self.hops[i].conn, self.hops[i].closed)) {
                Some((Some(bound), _)) if bound == conn => None,
                // RFC 4975 s.5.4: the passive side binds the connection to the
                // session whose URI is the first To-Path URI of the first request.
                Some((None, false)) => None,
                // RFC 4975 s.5.4: "If the session is already in use, it MUST
                // reject the request with a 506 response."
                Some((Some(_), _)) => Some(506),
                // RFC 4975 s.5.4: "If no match exists, the node MUST reject the
                // request with a 481 response." (a session that ended, too).
                Some((None, true)) | None => Some(481),
            };
            let (Some(index), None) = (index, refuse) else {
                if let Some(transmit) = refuse.and_then(|status| session::refusal(head, status)) {
                    self.out.push_back(Output::MsrpTransmit { conn, transmit });
                }
                return;
            };
            if self.hops[index].conn.is_none() {
                self.conns.entry(conn).or_default().hops.push(index);
                self.bind(index, conn, false);
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.current = Some(index);
                c.routes.push((raw.to_owned(), index));
            }
        }
        self.frame_body(conn, event);
    }

    /// Hands a frame event to the session of the hop reading on `conn`.
    fn frame_body(&mut self, conn: ConnId, event: FramerEvent) {
        let Some(index) = self.conns.get(&conn).and_then(|c| c.current) else { return };
        let now = self.now;
        if let Some(s) = self.hops[index].session.as_mut() {
            let _ = s.handle(now, session::Input::Frame(event));
        }
    }

    fn send_message(
        &mut self,
        target: String,
        recipients: &[String],
        content_type: String,
        body: Bytes,
    ) -> Result<(), UsageError> {
        let Role::Sender { flow, hop, label } = self.role.clone() else { return Err(UsageError::WrongRole) };
        if !self.hops.is_empty() {
            return Err(UsageError::WrongState);
        }
        let media_type = MediaType::parse_str(&content_type).map_err(|_| UsageError::ContentType)?;
        let intent = SendIntent { content_type: media_type, wrapped: None, size: body.len() as u64 };
        let index = self.new_hop(hop, &label, Side::Offerer)?;
        let offer = build_offer(self.hops[index].local_uri.clone(), &self.config.capabilities, Some(&intent));
        let sdp = self.sdp(&offer);
        let setup = offer.setup;
        self.hops[index].offer = Some(offer);
        self.message = Some((content_type, body));
        // Ad-hoc group: RFC 5366 s.4, the SDP and the recipient list in one multipart/mixed body.
        let list = if recipients.is_empty() {
            None
        } else {
            let entries: Vec<Entry> = recipients.iter().map(Entry::new).collect();
            Some(resource_lists::part(&entries).map_err(|_| UsageError::Recipients)?)
        };
        let (sdp, sdp_type) = with_list(sdp, list.as_ref()).ok_or(UsageError::Recipients)?;
        let leg = LegId::new(0);
        let from = self.config.aor.clone();
        let target_uri = target.clone();
        self.ua_input(ua::Input::Command(ua::Command::Invite {
            leg,
            flow,
            transport: self.config.transport(flow),
            target,
            from,
            body: sdp,
            content_type: Some(sdp_type),
        }))?;
        self.hop_input(index, HopInput::OfferSent { setup });
        self.down.push(Leg::new(leg, index, target_uri));
        Ok(())
    }

    // ----- the pump -----------------------------------------------------------

    /// Drains every inner machine into `out` until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(output) = self.ua.poll_output() {
                moved = true;
                match output {
                    ua::Output::Transmit { flow, bytes, .. } => self.out.push_back(Output::SipTransmit { flow, bytes }),
                    ua::Output::Event(event) => self.ua_event(event),
                }
            }
            if !self.deferred_reports.is_empty() && self.flush_reports() {
                moved = true;
            }
            if self.end_up_pending && self.upstream_flushed() {
                self.end_up_pending = false;
                if let Some(leg) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.leg) {
                    let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
                }
                moved = true;
            }
            for index in 0..self.hops.len() {
                while let Some(output) = self.hops[index].link.poll_output() {
                    moved = true;
                    self.link_output(index, output);
                }
                let mut events = Vec::new();
                let conn = self.hops[index].conn;
                if let Some(s) = self.hops[index].session.as_mut() {
                    while let Some(output) = s.poll_output() {
                        moved = true;
                        match output {
                            session::Output::Transmit(transmit) => {
                                if let Some(conn) = conn {
                                    self.out.push_back(Output::MsrpTransmit { conn, transmit });
                                }
                            }
                            session::Output::Event(event) => events.push(event),
                        }
                    }
                }
                for event in events {
                    self.msrp_event(index, event);
                }
            }
            if !moved {
                break;
            }
        }
        if self.config.slow_member.is_some() {
            let before = self.out.len();
            self.check_slow_members();
            if self.out.len() != before {
                self.pump();
            }
        }
    }

    fn link_output(&mut self, index: usize, output: HopOutput) {
        match output {
            HopOutput::Connect { params } => {
                let trigger = self.hops[index].link.trigger();
                let label = self.hops[index].label.clone();
                let hop = HopId::new(u32::try_from(index).unwrap_or(u32::MAX));
                self.out.push_back(Output::Connect { hop, label, params, trigger });
            }
            HopOutput::Failed(_) => {
                self.event(Event::HopFailed { hop: self.hops[index].label.clone() });
                // A hop without its link ends its SIP leg; the relay rules then
                // end the other side (all members gone, or the upstream gone).
                if let Some(leg) = self.up.as_ref().filter(|l| l.hop == index && !l.ended).map(|l| l.leg) {
                    let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
                } else if let Some(pos) = self.down.iter().position(|l| l.hop == index && !l.ended) {
                    self.end_down(pos);
                }
            }
            HopOutput::PresetOverridden { .. } => {
                self.event(Event::PresetOverridden { hop: self.hops[index].label.clone() });
            }
            _ => {}
        }
    }

    fn ua_event(&mut self, event: ua::Event) {
        match event {
            ua::Event::IncomingCall { leg, request } => self.incoming_call(leg, &request),
            ua::Event::Answered { leg, response } => self.answered(leg, &response),
            ua::Event::Acked { leg, .. } => self.acked(leg),
            ua::Event::Ended { leg, reason } => self.ended(leg, reason),
            ua::Event::PeerError { reason, .. } => {
                self.event(Event::PeerError { reason, detail: String::new() });
            }
            _ => {}
        }
    }

    fn respond(&mut self, leg: LegId, code: u16, body: Bytes) {
        let content_type = if body.is_empty() { None } else { Some("application/sdp".to_owned()) };
        let _ = self.ua_input(ua::Input::Command(ua::Command::Respond { leg, code, body, content_type }));
    }

    fn incoming_call(&mut self, leg: LegId, request: &Message) {
        let (up_hop, up_label, streaming) = match &self.role {
            Role::Sender { .. } => {
                self.respond(leg, 488, Bytes::new());
                return;
            }
            Role::Receiver { reject: Some(code), .. } => {
                let code = *code;
                self.respond(leg, code, Bytes::new());
                return;
            }
            Role::Receiver { hop, label, .. } | Role::Iwf { hop, label, .. } => (*hop, label.clone(), false),
            Role::Relay { up_hop, up_label, user_labels, .. } => {
                // A PF serving several users names each user's upstream hop.
                let uri = request.request_uri_str().unwrap_or_default();
                let label = user_labels.iter().find(|(user, _)| user == uri).map_or(up_label, |(_, label)| label);
                (*up_hop, label.clone(), true)
            }
        };
        if self.up.is_some() {
            // One SIP session per machine: a new INVITE in this dialog (a
            // re-INVITE) is not supported (a [`crate::Server`] gives every
            // other Call-ID its own machine).
            self.respond(leg, 486, Bytes::new());
            return;
        }
        // Pre-defined groups: the Request-URI names the group (its members come
        // from the directory); an unknown group is answered 404.
        let mut selected = None;
        if let Role::Relay { groups, .. } = &self.role {
            let ad_hoc = request.content_type_str().is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/"));
            if !groups.is_empty() && !ad_hoc {
                let uri = request.request_uri_str().unwrap_or_default();
                match groups.iter().find(|(group, _)| group == uri) {
                    Some((_, members)) => selected = Some(members.clone()),
                    None => {
                        self.respond(leg, 404, Bytes::new());
                        return;
                    }
                }
            }
        }
        let Some((sdp_body, list)) = split_body(request) else {
            self.respond(leg, 400, Bytes::new());
            return;
        };
        // Ad-hoc group at the CF: one member per entry, routed by the address rules.
        if let (Role::Relay { aggregate: true, rules, .. }, Some((_, entries))) = (&self.role, &list) {
            let mut members = Vec::with_capacity(entries.len());
            for entry in entries {
                let Some(rule) = rules.iter().find(|r| entry.uri.ends_with(&r.suffix)) else {
                    // No route for a member: refuse the whole request (a member can't be dropped silently).
                    self.respond(leg, 404, Bytes::new());
                    return;
                };
                members.push(Downstream {
                    target: entry.uri.clone(),
                    flow: rule.flow,
                    hop: rule.hop,
                    label: rule.label.clone(),
                });
            }
            selected = Some(members);
        }
        let Ok(offer) = MsrpSdp::parse(sdp_body) else {
            self.respond(leg, 488, Bytes::new());
            return;
        };
        let Ok(index) = self.new_hop(up_hop, &up_label, Side::Answerer) else {
            self.respond(leg, 500, Bytes::new());
            return;
        };
        let want = self.config.preset.want_opener(up_hop);
        let Ok(answer) = answer_offer(&offer, self.hops[index].local_uri.clone(), &self.config.capabilities, want)
        else {
            self.hops.pop();
            self.respond(leg, 488, Bytes::new());
            return;
        };
        let offer_media = offer.first_active();
        let peer = answer.negotiated.peer.clone();
        let remote_path = offer_media.map(|m| m.path().to_vec()).unwrap_or_default();
        self.hop_input(index, HopInput::OfferReceived { setup: offer_media.and_then(|m| m.setup()), peer });
        self.hop_input(index, HopInput::AnswerSent { setup: answer.media.setup });
        self.make_session(index, remote_path, answer.negotiated.opener, streaming);
        self.answer = Some(self.sdp(&answer.media));
        let user = request.request_uri_str().unwrap_or_default().to_owned();
        self.up = Some(Leg::new(leg, index, user));
        self.peer_uri = request.from().map(|f| f.uri().to_string()).unwrap_or_default();
        self.recipient_uri = request.to().map(|t| t.uri().to_string()).unwrap_or_default();
        let intent = answer.intent;
        let (down, answer_now) = match &self.role {
            Role::Relay { down, aggregate, .. } => (
                selected.unwrap_or_else(|| down.clone()),
                *aggregate && self.config.answer_policy == AnswerPolicy::Immediate,
            ),
            _ => (Vec::new(), true),
        };
        for (n, d) in down.iter().enumerate() {
            let Ok(index) = self.new_hop(d.hop, &d.label, Side::Offerer) else { continue };
            let offer = build_offer(self.hops[index].local_uri.clone(), &self.config.capabilities, intent.as_ref());
            let sdp = self.sdp(&offer);
            // PF(A) passes an ad-hoc list on to the CF; the CF's INVITE#3 has none.
            let pass_list = match &self.role {
                Role::Relay { aggregate: false, .. } => list.as_ref().map(|(part, _)| part),
                _ => None,
            };
            let Some((sdp, sdp_type)) = with_list(sdp, pass_list) else { continue };
            let setup = offer.setup;
            self.hops[index].offer = Some(offer);
            let out_leg = LegId::new(n as u64 + 1);
            let from =
                request.from().map(|f| f.uri().to_string()).unwrap_or_else(|| format!("sip:{}", self.config.host));
            let member = if d.target.is_empty() {
                request.request_uri_str().unwrap_or_default().to_owned()
            } else {
                d.target.clone()
            };
            let _ = self.ua_input(ua::Input::Command(ua::Command::Invite {
                leg: out_leg,
                flow: d.flow,
                transport: self.config.transport(d.flow),
                target: member.clone(),
                from,
                body: sdp,
                content_type: Some(sdp_type),
            }));
            self.hop_input(index, HopInput::OfferSent { setup });
            self.down.push(Leg::new(out_leg, index, member));
        }
        if answer_now {
            self.answer_upstream();
        }
    }

    fn answer_upstream(&mut self) {
        if self.answer_sent {
            return;
        }
        let Some(up) = self.up.as_ref() else { return };
        let (leg, index) = (up.leg, up.hop);
        self.answer_sent = true;
        let body = self.answer.take().unwrap_or_default();
        self.respond(leg, 200, body);
        if let Some(up) = self.up.as_mut() {
            up.answered = true;
        }
        self.hop_input(index, HopInput::SuccessSent);
    }

    fn answered(&mut self, leg: LegId, response: &Message) {
        let Some(pos) = self.down.iter().position(|l| l.leg == leg) else { return };
        let index = self.down[pos].hop;
        self.down[pos].answered = true;
        let parsed = MsrpSdp::parse(response.body());
        let check = match (&self.hops[index].offer, parsed) {
            (Some(offer), Ok(answer)) => check_answer(offer, None, &answer),
            _ => AnswerCheck::Failed(cpm_negotiation::Refusal::NoMsrpMedia),
        };
        let AnswerCheck::Usable(negotiated) = check else {
            // The 200 is final: ACK it, then end the dialog with BYE.
            self.send_ack(pos);
            let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
            self.event(Event::HopFailed { hop: self.hops[index].label.clone() });
            return;
        };
        let remote_path = negotiated.peer.as_ref().map(|p| p.path.clone()).unwrap_or_default();
        let setup = MsrpSdp::parse(response.body()).ok().and_then(|s| s.first_active().and_then(|m| m.setup()));
        self.hop_input(index, HopInput::AnswerReceived { setup, peer: negotiated.peer.clone() });
        self.make_session(index, remote_path, negotiated.opener, false);
        let ack_now = match &self.role {
            Role::Sender { .. } => true,
            _ => self.config.ack_policy == AckPolicy::OnDownstreamSuccess || self.upstream_acked,
        };
        if ack_now {
            self.send_ack(pos);
        }
        self.hop_input(index, HopInput::SuccessReceived);
        if let Some((content_type, body)) = self.message.take() {
            let handle = MessageHandle::new(self.next_handle);
            self.next_handle += 1;
            self.event(Event::Submitted { bytes: body.clone() });
            self.session_command(
                index,
                MsrpCommand::Send {
                    handle,
                    content_type,
                    body,
                    success_report: true,
                    failure_report: FailureReport::Yes,
                },
            );
        }
        if matches!(self.role, Role::Relay { .. }) {
            self.answer_upstream();
        }
    }

    fn send_ack(&mut self, pos: usize) {
        if self.down[pos].acked {
            return;
        }
        self.down[pos].acked = true;
        let (leg, index) = (self.down[pos].leg, self.down[pos].hop);
        let _ = self.ua_input(ua::Input::Command(ua::Command::Ack { leg }));
        self.hop_input(index, HopInput::AckSent);
    }

    fn acked(&mut self, leg: LegId) {
        let Some(up) = self.up.as_mut() else { return };
        if up.leg != leg {
            return;
        }
        up.acked = true;
        let index = up.hop;
        self.upstream_acked = true;
        self.hop_input(index, HopInput::AckReceived);
        for pos in 0..self.down.len() {
            let hop = self.down[pos].hop;
            // The CF never sends ACK#3 before it has 200#3 (seed 000 step 111).
            if self.down[pos].answered {
                self.send_ack(pos);
            }
            self.hop_input(hop, HopInput::UpstreamAck);
        }
    }

    fn ended(&mut self, leg: LegId, reason: ua::EndReason) {
        if let Some(up) = self.up.as_mut() {
            if up.leg == leg && !up.ended {
                up.ended = true;
                let index = up.hop;
                self.close_hop(index);
                for pos in 0..self.down.len() {
                    self.end_down(pos);
                }
                self.event(Event::SessionEnded);
                return;
            }
        }
        let Some(pos) = self.down.iter().position(|l| l.leg == leg) else { return };
        let outcome = match reason {
            // RFC 3261 s.21.4.9: a 408 from downstream is a timeout there.
            ua::EndReason::TimedOut | ua::EndReason::Rejected { status: 408 } => Outcome::TimedOut,
            ua::EndReason::Rejected { status } => Outcome::Refused { status },
            _ => Outcome::SessionEnded,
        };
        let status = outcome.status();
        if !self.down[pos].ended {
            self.down[pos].ended = true;
            let index = self.down[pos].hop;
            self.close_hop(index);
            let label = self.hops[index].label.clone();
            match &self.role {
                Role::Sender { .. } if !self.done => {
                    self.done = true;
                    self.event(Event::Outcome { hop: label, outcome });
                }
                Role::Relay { aggregate: true, .. } if !self.down[pos].reported => {
                    self.down[pos].failed = true;
                    self.down[pos].outcome = Some(status);
                    self.event(Event::MemberOutcome { hop: label, outcome });
                    self.member_imdns();
                    let messages: Vec<MessageId> = self.relayed.keys().cloned().collect();
                    for message_id in messages {
                        self.report_upstream(message_id, None);
                    }
                }
                _ => {}
            }
        }
        if self.down.iter().all(|l| l.ended) {
            if let Some(up) = self.up.as_ref() {
                if !up.ended {
                    let leg = up.leg;
                    if up.answered {
                        // The IMDNs and the REPORT owed upstream go before the BYE.
                        self.end_up_pending = true;
                    } else if status < 300 {
                        let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
                    } else {
                        // Every destination refused before we answered: pass the refusal on.
                        self.respond(leg, status, Bytes::new());
                    }
                }
            } else {
                self.event(Event::SessionEnded);
            }
        }
    }

    /// Controlling: the success REPORT upstream, once every member's outcome
    /// (a REPORT, or its leg's failure) is known.
    /// The upstream Message-ID a downstream handle carries (a relay forwards
    /// each message under the handle it chose for it).
    fn message_of(&self, handle: MessageHandle) -> Option<MessageId> {
        self.relayed.iter().find(|(_, h)| **h == handle).map(|(id, _)| id.clone())
    }

    /// A message sent on hop `index` is settled with `outcome`: the sender's
    /// outcome, or one member's at the controlling function.
    fn settled(&mut self, index: usize, message_id: Option<MessageId>, outcome: Outcome) {
        self.hops[index].done = true;
        let label = self.hops[index].label.clone();
        match &self.role {
            Role::Sender { .. } => self.finish_sender(label, outcome),
            Role::Relay { aggregate: true, .. } => {
                // One outcome per member: a REPORT after the member's leg
                // already failed changes nothing.
                let Some(leg) = self.down.iter_mut().find(|l| l.hop == index && l.outcome.is_none()) else {
                    return;
                };
                let status = outcome.status();
                leg.reported = true;
                leg.outcome = Some(status);
                self.event(Event::MemberOutcome { hop: label, outcome });
                let Some(message_id) = message_id else { return };
                self.outcomes.entry(message_id.clone()).or_default().push(status);
                self.member_imdns();
                self.report_upstream(message_id, None);
            }
            Role::Relay { .. } | Role::Receiver { .. } | Role::Iwf { .. } => {}
        }
    }

    fn report_upstream(&mut self, message_id: MessageId, byte_range: Option<msrp_core::ByteRange>) {
        let Some(up) = self.up.as_ref().map(|l| l.hop) else { return };
        let reports = self.outcomes.get(&message_id).map_or(0, Vec::len);
        let known = self.down.iter().all(|l| l.outcome.is_some());
        if reports == 0 || !known {
            return;
        }
        // Settled: nothing more is kept for the message (a late REPORT for it
        // finds no state and changes nothing).
        self.outcomes.remove(&message_id);
        self.relayed.remove(&message_id);
        // SPEC "Acknowledgements": never a failure REPORT on the sender's session
        // for one member; the success REPORT covers the message once every
        // member's outcome is known (each member's own outcome went as an IMDN).
        self.send_report(up, MsrpCommand::Report { message_id, status: 200, byte_range });
    }

    fn end_down(&mut self, pos: usize) {
        let leg = self.down[pos].leg;
        let index = self.down[pos].hop;
        self.close_hop(index);
        let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
    }

    fn msrp_event(&mut self, index: usize, event: MsrpEvent) {
        let upstream = self.up.as_ref().is_some_and(|l| l.hop == index);
        match event {
            MsrpEvent::MessageReceived { message_id, body, total, content_type, .. }
                if matches!(self.role, Role::Iwf { .. }) =>
            {
                let Role::Iwf { iwf, .. } = self.role.clone() else { return };
                self.hops[index].done = true;
                let label = self.hops[index].label.clone();
                self.event(Event::MessageDelivered { hop: label, body: body.clone() });
                let mut message = NonCpmMessage::new(
                    self.peer_uri.clone(),
                    self.recipient_uri.clone(),
                    content_type.unwrap_or_default(),
                    body.clone(),
                );
                let mut id = [0u8; 8];
                msrp_core::IdSource::fill(&mut self.ids, &mut id);
                message.id = u64::from_le_bytes(id);
                message.submitted_at = iwf
                    .wall_clock
                    .map_or(0, |(at, unix)| unix.saturating_add(self.now.saturating_duration_since(at).as_secs()));
                message.sms_first_sequence = self.sms_sequence;
                match interworking::convert(iwf.system, &message, &iwf.conversion) {
                    Ok(conversion) => {
                        let count = u32::try_from(conversion.parts.len()).unwrap_or(u32::MAX);
                        // SMPP v3.4 s.3.2: sequence numbers stay within 1..=0x7FFFFFFF.
                        self.sms_sequence = (self.sms_sequence.wrapping_add(count) - 1) % 0x7FFF_FFFF + 1;
                        let delivery = DeliveryId::new(self.next_delivery);
                        self.next_delivery += 1;
                        self.event(Event::DeliverToNonCpm {
                            delivery,
                            system: iwf.system,
                            format: conversion.format,
                            payload: body,
                            parts: conversion.parts,
                        });
                        match iwf.report {
                            IwfReport::AfterNonCpmAck => self.iwf_pending.push((delivery, index, message_id, total)),
                            // The session already queued its success REPORT.
                            IwfReport::AtMediaEnd => self.after_iwf_report(),
                        }
                    }
                    Err(error) => {
                        self.event(Event::PeerError { reason: "interworking", detail: error.to_string() });
                        if iwf.report == IwfReport::AfterNonCpmAck {
                            // RFC 4975 s.7.1.2: the failure REPORT covers the whole message.
                            let byte_range =
                                Some(msrp_core::ByteRange { start: 1, end: Some(total), total: Some(total) });
                            let status = error.status_code();
                            self.send_report(index, MsrpCommand::Report { message_id, status, byte_range });
                            self.after_iwf_report();
                        }
                    }
                }
            }
            MsrpEvent::MessageReceived { content_type, body, .. } if matches!(self.role, Role::Sender { .. }) => {
                // The sender receives IMDNs only: one per member (SPEC "Acknowledgements").
                match delivery_notification(content_type.as_deref(), body) {
                    Some((member, status)) => self.event(Event::Delivery { member, status }),
                    None => self.event(Event::PeerError {
                        reason: "IMDN",
                        detail: "a message to the sender that is not a delivery notification".to_owned(),
                    }),
                }
            }
            MsrpEvent::MessageReceived { message_id, body, .. } if !matches!(self.role, Role::Relay { .. }) => {
                self.hops[index].done = true;
                self.event(Event::MessageDelivered { hop: self.hops[index].label.clone(), body });
                // Issue 8: the receiver "sends the delivery REPORT and IMDN" (the
                // session queued the REPORT; RFC 5438 s.7.2.1 the IMDN, from the member).
                if matches!(self.role, Role::Receiver { .. }) && upstream {
                    let member = self.up.as_ref().map(|l| l.member.clone()).unwrap_or_default();
                    let to = self.peer_uri.clone();
                    if let Some(imdn) = self.imdn(&member, &to, &message_id, true) {
                        self.send_on(index, cpim::CONTENT_TYPE.to_owned(), imdn);
                    }
                }
            }
            MsrpEvent::MessageReceived { content_type, body, .. } if !upstream => {
                // A relay got a message from downstream: a member's IMDN. A PF
                // passes it upstream; the CF takes it in (it sends its own IMDN
                // per member once the member's outcome is known).
                if matches!(self.role, Role::Relay { aggregate: false, .. }) {
                    if let Some(up) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.hop) {
                        let content_type = content_type.unwrap_or_else(|| cpim::CONTENT_TYPE.to_owned());
                        self.send_on(up, content_type, body);
                    }
                }
            }
            MsrpEvent::MessageStarted { message_id, content_type, total, success_report, failure_report }
                if upstream =>
            {
                let handle = MessageHandle::new(self.next_handle);
                self.next_handle += 1;
                self.relayed.insert(message_id.clone(), handle);
                let content_type = content_type.unwrap_or_else(|| "text/plain".to_owned());
                for pos in 0..self.down.len() {
                    if self.down[pos].ended {
                        continue;
                    }
                    let hop = self.down[pos].hop;
                    self.session_command(
                        hop,
                        MsrpCommand::Forward {
                            handle,
                            message_id: message_id.clone(),
                            content_type: content_type.clone(),
                            total,
                            success_report,
                            failure_report,
                        },
                    );
                    self.hop_input(hop, HopInput::FirstSend);
                }
                // Members that failed before the message came get their IMDN now.
                self.member_imdns();
            }
            MsrpEvent::ChunkReceived { message_id, data, .. } if upstream => {
                let Some(&handle) = self.relayed.get(&message_id) else { return };
                for pos in 0..self.down.len() {
                    if self.down[pos].ended {
                        continue;
                    }
                    // One body buffer shared by every member: a refcount, not a copy.
                    let command = MsrpCommand::StreamData { handle, data: data.clone(), last: false };
                    self.session_command(self.down[pos].hop, command);
                }
            }
            MsrpEvent::MessageReceived { message_id, .. } if upstream => {
                let Some(&handle) = self.relayed.get(&message_id) else { return };
                for pos in 0..self.down.len() {
                    if self.down[pos].ended {
                        continue;
                    }
                    let command = MsrpCommand::StreamData { handle, data: Bytes::new(), last: true };
                    self.session_command(self.down[pos].hop, command);
                }
            }
            MsrpEvent::ReportReceived { handle, message_id, status, byte_range } => match &self.role {
                Role::Relay { aggregate: false, .. } => {
                    // A PF passes every REPORT on as it is (RFC 4975 s.7.1.2: a
                    // REPORT covers the Byte-Range it names).
                    self.hops[index].done = true;
                    let Some(up) = self.up.as_ref().map(|l| l.hop) else { return };
                    self.send_report(up, MsrpCommand::Report { message_id, status, byte_range });
                }
                // RFC 4975 s.7.3.2: a REPORT is matched to its message by
                // Message-ID (`handle`); a success REPORT settles the message only
                // once success REPORTs cover all of it (MessageDelivered), a
                // failure REPORT at once.
                _ if status == 200 || handle.is_none() => {}
                _ => self.settled(index, Some(message_id), Outcome::Failed { status }),
            },
            MsrpEvent::MessageDelivered { handle } => {
                let message_id = self.message_of(handle);
                self.settled(index, message_id, Outcome::Delivered);
            }
            MsrpEvent::ReportTimedOut { handle } => {
                let message_id = self.message_of(handle);
                self.settled(index, message_id, Outcome::TimedOut);
            }
            MsrpEvent::SendFailed { status, .. } => {
                let label = self.hops[index].label.clone();
                if matches!(self.role, Role::Sender { .. }) {
                    let outcome = match status {
                        0 => Outcome::LinkLost,
                        408 => Outcome::TimedOut,
                        status => Outcome::Failed { status },
                    };
                    self.finish_sender(label, outcome);
                } else if self.hops[index].done {
                    // Something sent after the hop's work (an IMDN) is lost: nothing to end.
                } else {
                    self.event(Event::HopFailed { hop: label });
                    // The message cannot cross this hop: its SIP leg ends (a
                    // member's failure is then that member's outcome).
                    self.hop_lost(index);
                }
            }
            MsrpEvent::PeerError { error } => {
                self.event(Event::PeerError { reason: "MSRP", detail: error.to_string() });
            }
            _ => {}
        }
    }

    /// IWF: the non-CPM system acknowledged the hand-over `delivery`.
    fn non_cpm_ack(&mut self, delivery: DeliveryId, status: u16) -> Result<(), UsageError> {
        let Role::Iwf { iwf, .. } = &self.role else { return Err(UsageError::WrongRole) };
        if iwf.report == IwfReport::AtMediaEnd {
            // Already reported at media end: the acknowledgement changes nothing.
            return Ok(());
        }
        let pos = self.iwf_pending.iter().position(|p| p.0 == delivery).ok_or(UsageError::UnknownDelivery)?;
        let (_, index, message_id, total) = self.iwf_pending.remove(pos);
        // SPEC "Acknowledgements": the system's acknowledgement becomes the IWF's
        // delivery REPORT (RFC 4975 s.7.1.2: a success REPORT covers the whole message).
        let byte_range = Some(msrp_core::ByteRange { start: 1, end: Some(total), total: Some(total) });
        self.send_report(index, MsrpCommand::Report { message_id, status, byte_range });
        self.after_iwf_report();
        Ok(())
    }

    fn after_iwf_report(&mut self) {
        let Role::Iwf { iwf, .. } = &self.role else { return };
        if iwf.bye_after_report {
            if let Some(leg) = self.up.as_ref().filter(|l| !l.ended).map(|l| l.leg) {
                let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
            }
        }
    }

    /// The sender's one outcome (the first of a REPORT, a failed send or the
    /// end of its leg), then its BYE.
    fn finish_sender(&mut self, hop: String, outcome: Outcome) {
        if self.done {
            return;
        }
        self.done = true;
        self.event(Event::Outcome { hop, outcome });
        // Seed 000 paragraph 0102: A sends BYE after the acknowledgement reached it.
        if let Some(pos) = self.down.first().map(|_| 0) {
            self.end_down(pos);
        }
    }

    pub(crate) fn hop_triggers(&self) -> Vec<(String, Trigger)> {
        self.hops.iter().map(|h| (h.label.clone(), h.link.trigger())).collect()
    }
}

/// An ad-hoc group's recipient list: the body part as received, and its entries.
type RecipientList = (Part, Vec<Entry>);

/// The SDP of an INVITE and, for an ad-hoc group (RFC 5366), its recipient
/// list; `None` for a body that cannot be read.
fn split_body(request: &Message) -> Option<(Bytes, Option<RecipientList>)> {
    let content_type = request.content_type_str().unwrap_or("application/sdp");
    if !content_type.to_ascii_lowercase().starts_with("multipart/") {
        return Some((request.body(), None));
    }
    let multipart = Multipart::parse(content_type, request.body()).ok()?;
    let sdp = multipart.find_media_type("application/sdp")?.body().clone();
    let list = match multipart.find_disposition(resource_lists::DISPOSITION) {
        // One leg per member, however many times the list names it.
        Some(part) => Some((part.clone(), resource_lists::distinct(resource_lists::read(part.body()).ok()?))),
        None => None,
    };
    Some((sdp, list))
}

/// The INVITE body: the SDP alone, or a multipart/mixed with the list part.
fn with_list(sdp: Bytes, list: Option<&Part>) -> Option<(Bytes, String)> {
    let Some(list) = list else { return Some((sdp, "application/sdp".to_owned())) };
    let sdp_part = Part::new(&[("Content-Type", "application/sdp")], sdp).ok()?;
    let built = Multipart::new(vec![sdp_part, list.clone()]).build("mixed", None).ok()?;
    Some((built.body, built.content_type))
}

/// The member and status of a CPIM-wrapped IMDN delivery notification
/// (RFC 5438 s.7.2.1), `None` for anything else.
fn delivery_notification(content_type: Option<&str>, body: Bytes) -> Option<(String, DeliveryStatus)> {
    let essence = content_type.unwrap_or_default().split(';').next().unwrap_or_default().trim();
    if !essence.eq_ignore_ascii_case(cpim::CONTENT_TYPE) {
        return None;
    }
    let message = cpim::Message::parse(body).ok()?;
    let imdn = imdn::from_message(&message).ok()??;
    let Notification::Delivery(status) = imdn.notification else { return None };
    // RFC 5438 s.11.1.3: <recipient-uri> names the member; else the CPIM From.
    let member = imdn.recipient_uri.unwrap_or_else(|| message.from().uri);
    Some((member, status))
}
