//! The machine every entity is built on: a SIP user agent (one inbound leg,
//! any number of outbound legs), one [`HopLink`] plus one MSRP [`Session`]
//! per hop, and the role's glue (sender, receiver, or back-to-back relay).
//!
//! This module holds the state and the plumbing (inputs, hops, sessions,
//! the output pump); `call` the SIP legs; `links` the MSRP connections;
//! `relay` the cut-through; `sender`, `controlling` and `iwf` what only
//! those roles decide; `bodies` the INVITE bodies and IMDNs.

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
use crate::error::{PeerError, UsageError};
use crate::ids::{ConnId, DeliveryId, FlowId, HopId, SharedIds};
use crate::interworking::{self, NonCpmMessage};
use crate::{Command, Event, Input, Outcome, Output};

mod bodies;
mod call;
mod controlling;
mod iwf;
mod links;
mod relay;
mod sender;

use bodies::{delivery_notification, split_body, with_list};

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
                    MsrpCommand::StreamData { data, .. } | MsrpCommand::StreamOwned { data, .. } => data.len(),
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

    fn msrp_event(&mut self, index: usize, event: MsrpEvent) {
        let upstream = self.up.as_ref().is_some_and(|l| l.hop == index);
        match event {
            MsrpEvent::MessageReceived { message_id, body, total, content_type, .. }
                if matches!(self.role, Role::Iwf { .. }) =>
            {
                self.hand_over(index, message_id, body, total, content_type);
            }
            MsrpEvent::MessageReceived { content_type, body, .. } if matches!(self.role, Role::Sender { .. }) => {
                // The sender receives IMDNs only: one per member (SPEC "Acknowledgements").
                match delivery_notification(content_type.as_deref(), body) {
                    Some((member, status)) => self.event(Event::Delivery { member, status }),
                    None => self.event(Event::PeerError { error: PeerError::NotANotification }),
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
                let content_type = content_type.unwrap_or_else(|| "text/plain".to_owned());
                self.relay_start(message_id, content_type, total, success_report, failure_report);
            }
            MsrpEvent::ChunkReceived { message_id, data, .. } if upstream => self.relay_data(&message_id, data, false),
            MsrpEvent::MessageReceived { message_id, .. } if upstream => {
                self.relay_data(&message_id, Bytes::new(), true);
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
                self.event(Event::PeerError { error: PeerError::Msrp(error) });
            }
            _ => {}
        }
    }

    pub(crate) fn hop_triggers(&self) -> Vec<(String, Trigger)> {
        self.hops.iter().map(|h| (h.label.clone(), h.link.trigger())).collect()
    }
}
