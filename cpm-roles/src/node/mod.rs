//! The machine every entity is built on: the call core, shared by every
//! role (a SIP user agent with one inbound leg and any number of outbound
//! legs, one [`HopLink`] plus one MSRP [`Session`] per hop, kept in the
//! element's [`Links`], msrp-core's endpoint), and the session's role,
//! asked at each decision point ([`RoleLogic`]).
//!
//! The core: this module (state, inputs, hops, sessions, the output pump),
//! `call` (the SIP legs), `links` (a hop's link), `bodies` (INVITE bodies
//! and IMDNs). The roles, each with only its own state and decisions:
//! `sender`, `receiver`, `participating`, `controlling`, `iwf` (the two
//! relays share `relay`, the cut-through); `role` holds the trait and the
//! role configuration. A [`Step`] is a session's machine together with the
//! element's links, for the length of one input.

use std::collections::{HashMap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use bytes::Bytes;
use cpm_negotiation::cpim::{self, Address};
use cpm_negotiation::imdn::{self, DeliveryStatus, Imdn, Notification};
use cpm_negotiation::{
    answer_offer, build_offer, check_answer, AckPolicy, AnswerCheck, AnswerPolicy, Hop, HopConfig, HopInput, HopLink,
    HopOutput, LocalMedia, MediaType, MsrpSdp, SendIntent, Side, Trigger,
};
use msrp_core::link::SessionKey;
use msrp_core::reassembly::{DeliveryMode, ReassemblyConfig};
use msrp_core::session::{self, Command as MsrpCommand, Event as MsrpEvent, LinkRole, MessageHandle, Session};
use msrp_core::uri::Scheme;
use msrp_core::{FailureReport, MessageId, MsrpUri};
use sip_lite::multipart::{Multipart, Part};
use sip_lite::resource_lists::{self, Entry};
use sip_lite::sip::Message;
use sip_lite::ua::{self, LegId, UaConfig, UserAgent};

use crate::config::{entity_capabilities, AddressRule, Downstream, EntityConfig, IwfConfig, IwfReport};
use crate::error::{PeerError, UsageError};
use crate::ids::{DeliveryId, FlowId, HopId, SessionId, SharedIds};
use crate::interworking::{self, NonCpmMessage};
use crate::links::Links;
use crate::{Command, Event, Input, Outcome, Output};

mod bodies;
mod call;
mod controlling;
mod iwf;
mod links;
mod participating;
mod receiver;
mod relay;
mod role;
mod sender;

use relay::Relay;
use role::{Plan, RoleLogic};
pub(crate) use role::{Role, Routing};

use bodies::{delivery_notification, split_body, with_list};

struct HopState {
    label: String,
    side: Side,
    link: HopLink,
    local_uri: MsrpUri,
    offer: Option<LocalMedia>,
    /// The hop's MSRP session in the element's [`Links`].
    session: Option<SessionKey>,
    /// The link carries the hop (its [`HopLink`] was told).
    up: bool,
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

/// What a [`crate::Server`] hands one session besides its [`Input`]s:
/// what the element's links say about the session's hops.
#[derive(Debug)]
pub(crate) enum Work {
    /// An input for the session.
    Input(Input),
    /// Hop `.0`'s link is up (connected, reused, or bound by a request).
    LinkUp(usize),
    /// The link hop `.0` asked for could not be opened.
    ConnectFailed(usize),
    /// Hop `.0`'s link is gone.
    LinkLost(usize),
    /// An event of hop `.0`'s MSRP session.
    Msrp(usize, MsrpEvent),
    /// Something the session waits for may have moved (its sessions wrote).
    Pump,
}

/// A session's machine with the element's MSRP links, for one step: every
/// decision reads and commands the hops' sessions through `links`.
///
/// What the step says and what the links say go into one queue, `out`, in
/// the order they happen (a frame queued before a link's close is written
/// before it); what the links report about other hops goes to `work`.
pub(crate) struct Step<'a> {
    pub(crate) node: &'a mut Node,
    pub(crate) links: &'a mut Links,
    pub(crate) slot: SessionId,
    pub(crate) out: &'a mut VecDeque<Output>,
    pub(crate) work: &'a mut VecDeque<(SessionId, Work)>,
}

impl Deref for Step<'_> {
    type Target = Node;
    fn deref(&self) -> &Node {
        self.node
    }
}

impl DerefMut for Step<'_> {
    fn deref_mut(&mut self) -> &mut Node {
        self.node
    }
}

pub(crate) struct Node {
    config: EntityConfig,
    /// The role's state and decisions (out of the node while a hook runs).
    role: Option<Box<dyn RoleLogic>>,
    ua: UserAgent,
    ids: SharedIds,
    hops: Vec<HopState>,
    up: Option<Leg>,
    down: Vec<Leg>,
    now: Instant,
    upstream_acked: bool,
    answer: Option<Bytes>,
    answer_sent: bool,
    next_handle: u64,
    /// The From URI of the upstream INVITE (the sender, for IMDNs).
    peer_uri: String,
    /// The To URI of the upstream INVITE (an IWF's non-CPM recipient).
    recipient_uri: String,
    /// REPORTs held until the messages sent before them on the same hop are
    /// through (a REPORT must not overtake the IMDNs it concludes).
    deferred_reports: Vec<(usize, MsrpCommand)>,
    /// Relay: every downstream leg ended; the upstream leg ends (BYE) once
    /// what is owed upstream (IMDNs, REPORTs) is through.
    end_up_pending: bool,
    /// Call-IDs of the legs this session started, for the element to route
    /// their responses and requests here.
    new_calls: Vec<String>,
}

impl Node {
    pub(crate) fn new(config: EntityConfig, role: &Role, now: Instant, ids: SharedIds) -> Self {
        let contact = format!("sip:{}", config.host);
        let mut ua_config = UaConfig::new(&config.host, &contact);
        ua_config.set_auto_ack(false).set_capabilities(entity_capabilities());
        let ua = UserAgent::new(ua_config, now, Box::new(ids.clone()));
        Self {
            config,
            role: Some(role.start()),
            ua,
            ids,
            hops: Vec::new(),
            up: None,
            down: Vec::new(),
            now,
            upstream_acked: false,
            answer: None,
            answer_sent: false,
            next_handle: 1,
            peer_uri: String::new(),
            recipient_uri: String::new(),
            deferred_reports: Vec::new(),
            end_up_pending: false,
            new_calls: Vec::new(),
        }
    }

    /// The Call-IDs of the legs it started since last asked.
    pub(crate) fn take_new_calls(&mut self) -> Vec<String> {
        std::mem::take(&mut self.new_calls)
    }

    /// The bytes its MSRP sessions hold (reassembly) and have queued to
    /// send (with what waits for a session not yet made).
    pub(crate) fn buffered(&self, links: &Links) -> (usize, usize) {
        let mut held = 0;
        let mut queued = 0;
        for hop in &self.hops {
            if let Some(session) = hop.session.and_then(|key| links.session(key)) {
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

    /// Whether nothing is left: no SIP leg, no hop on a link, no session
    /// with work.
    pub(crate) fn is_idle(&self, links: &Links) -> bool {
        self.ua.is_idle()
            && self.hops.iter().filter_map(|h| h.session).all(|key| {
                links.link_of(key).is_none() && links.session(key).map_or(true, |s| s.open_transactions() == 0)
            })
    }

    /// The MSRP sessions of its hops.
    pub(crate) fn session_keys(&self) -> impl Iterator<Item = SessionKey> + '_ {
        self.hops.iter().filter_map(|h| h.session)
    }

    /// The MSRP session of hop `index`.
    pub(crate) fn session_key(&self, index: usize) -> Option<SessionKey> {
        self.hops.get(index).and_then(|h| h.session)
    }

    /// Whether it waits for its sessions to write something (a held
    /// REPORT, or its BYE after what is owed upstream).
    pub(crate) fn waits_on_sessions(&self) -> bool {
        !self.deferred_reports.is_empty() || self.end_up_pending
    }

    /// A relay's upstream hop and the most bytes any of its downstream
    /// sessions has queued (what a slow member holds back).
    pub(crate) fn relay_backlog(&self, links: &Links) -> Option<(SessionKey, usize)> {
        if !self.role.as_ref().is_some_and(|r| r.relays()) {
            return None;
        }
        let up = self.up.as_ref().and_then(|l| self.hops.get(l.hop)).and_then(|h| h.session)?;
        let queued = self
            .down
            .iter()
            .filter_map(|l| self.hops.get(l.hop).and_then(|h| h.session))
            .filter_map(|key| links.session(key))
            .map(Session::queued_bytes)
            .max()
            .unwrap_or(0);
        Some((up, queued))
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        let slow = self.config.slow_member.and_then(|slow| {
            let waiting = self.down.iter().filter(|l| !l.ended && !self.hops.get(l.hop).is_some_and(|h| h.closed));
            waiting.filter_map(|l| l.full_since).min().map(|since| since + slow.after)
        });
        self.ua.poll_timeout().into_iter().chain(slow).min()
    }

    pub(crate) fn hop_triggers(&self) -> Vec<(String, Trigger)> {
        self.hops.iter().map(|h| (h.label.clone(), h.link.trigger())).collect()
    }
}

impl Step<'_> {
    fn event(&mut self, event: Event) {
        self.out.push_back(Output::Event { session: Some(self.slot), event });
    }

    /// Runs a hook of the session's role (taken out of the node meanwhile:
    /// a hook never calls a hook).
    fn with_role<T>(&mut self, hook: impl FnOnce(&mut dyn RoleLogic, &mut Self) -> T) -> Option<T> {
        let Some(mut role) = self.node.role.take() else {
            debug_assert!(false, "a role hook inside a role hook");
            return None;
        };
        let out = hook(role.as_mut(), self);
        self.node.role = Some(role);
        Some(out)
    }

    /// Takes what the links did for this step, in order.
    fn links_said(&mut self) {
        self.links.drain(self.out, self.work);
    }

    pub(crate) fn handle(&mut self, now: Instant, work: Work) -> Result<(), UsageError> {
        self.now = self.now.max(now);
        match work {
            Work::Input(input) => self.input(input)?,
            Work::LinkUp(index) => self.link_up(index),
            Work::ConnectFailed(index) => self.hop_input(index, HopInput::LinkDown),
            Work::LinkLost(index) => self.link_lost(index),
            Work::Msrp(index, event) => self.msrp_event(index, event),
            Work::Pump => {}
        }
        self.pump();
        Ok(())
    }

    fn input(&mut self, input: Input) -> Result<(), UsageError> {
        match input {
            Input::SipReceived { flow, message } => {
                let transport = self.config.transport(flow);
                self.ua_input(ua::Input::Received { flow, transport, message })?;
            }
            Input::SipDatagram { flow, bytes } => {
                // On a datagram transport each read is one message (RFC 3261 s.18.3).
                self.ua_input(ua::Input::Datagram { flow, bytes })?;
            }
            Input::NonCpmAck { delivery, status } => {
                self.with_role(|role, step| role.non_cpm_ack(step, delivery, status)).unwrap_or(Ok(()))?;
            }
            Input::Timeout => self.ua_input(ua::Input::Timeout)?,
            Input::Command(Command::SendMessage { target, recipients, content_type, body, .. }) => {
                self.with_role(|role, step| role.send_message(step, target, &recipients, content_type, body))
                    .unwrap_or(Ok(()))?;
            }
            Input::Command(Command::End { .. }) => self.end_session(),
            // The [`crate::Server`] around this machine runs the MSRP links;
            // what they do comes in as [`Work`].
            _ => return Err(UsageError::WrongState),
        }
        Ok(())
    }

    // ----- helpers ----------------------------------------------------------

    fn ua_input(&mut self, input: ua::Input) -> Result<(), UsageError> {
        let now = self.now;
        let invited = match &input {
            ua::Input::Command(ua::Command::Invite { leg, .. }) => Some(*leg),
            _ => None,
        };
        self.ua.handle(now, input).map_err(|_| UsageError::Sip)?;
        // A new leg's Call-ID, from the user agent that made it.
        if let Some(call_id) = invited.and_then(|leg| self.ua.call_id(leg)) {
            let call_id = call_id.to_owned();
            self.new_calls.push(call_id);
        }
        Ok(())
    }

    fn new_hop(&mut self, hop: Hop, label: &str, side: Side) -> Result<usize, UsageError> {
        let (opener, _, trigger) = self.config.preset.hop(hop);
        let link = HopLink::new(HopConfig { side, opener, trigger }).map_err(|_| UsageError::Preset)?;
        let node = &mut *self.node;
        let local_uri =
            // RFC 4975 s.6: `msrps` asks for TLS on the session's links.
            session::new_local_uri(
                if node.config.msrp_tls { Scheme::Msrps } else { Scheme::Msrp },
                &node.config.host,
                node.config.msrp_port,
                "tcp",
                &mut node.ids,
            )
                .map_err(|_| UsageError::Host)?;
        self.hops.push(HopState {
            label: label.to_owned(),
            side,
            link,
            local_uri,
            offer: None,
            session: None,
            up: false,
            done: false,
            pending: Vec::new(),
            closed: false,
        });
        Ok(self.hops.len() - 1)
    }

    fn sdp(&self, media: &LocalMedia) -> Bytes {
        let origin = format!("- {} 1 IN IP4 {}", self.hops.len(), self.config.host);
        let written = match &self.config.msrp_fingerprint {
            // RFC 4975 s.14.4: the fingerprint of our certificate "MUST
            // include this in the SDP".
            Some(fingerprint) if media.fingerprint.is_none() => {
                LocalMedia { fingerprint: Some(fingerprint.clone()), ..media.clone() }.to_sdp(&origin)
            }
            _ => media.to_sdp(&origin),
        };
        written.map(|d| d.to_bytes()).unwrap_or_default()
    }

    fn hop_input(&mut self, index: usize, input: HopInput) {
        if self.hops[index].link.handle(input).is_err() {
            let member = self.member_of(index);
            self.event(Event::HopFailed { member });
        }
    }

    fn make_session(&mut self, index: usize, remote_path: Vec<MsrpUri>, opener: Side, streaming: bool) {
        let hop = &self.hops[index];
        let role = if opener == hop.side { LinkRole::Active } else { LinkRole::Passive };
        let mut config = session::SessionConfig::new(hop.local_uri.clone(), remote_path, role);
        config.chunk_size = self.config.chunk_size;
        config.max_chunk_size = self.config.max_chunk_size;
        // The largest message this entity accepts (its a=max-size, RFC 4975
        // s.8.6) is also what its sessions reassemble, and may hold.
        let defaults = ReassemblyConfig::default();
        let max_size = self.config.capabilities.max_size.unwrap_or(u64::MAX);
        config.reassembly = ReassemblyConfig {
            mode: if streaming { DeliveryMode::Streaming } else { DeliveryMode::Buffered },
            max_message_size: max_size,
            max_held_bytes: usize::try_from(max_size).unwrap_or(usize::MAX).max(defaults.max_held_bytes),
            ..defaults
        };
        config.report_timeout = self.config.report_timeout;
        config.transaction_timeout = self.config.transaction_timeout;
        // A relay hop does not report itself: the final receiver does, and
        // the relay re-addresses that REPORT upstream (SPEC "Acknowledgements").
        config.success_reports = self.role.as_ref().map_or(true, |r| r.success_reports());
        let now = self.now;
        let session = Session::new(config, now, Box::new(self.ids.clone()));
        let slot = self.slot;
        let key = self.links.add(now, slot, index, session);
        self.hops[index].session = Some(key);
        let pending = std::mem::take(&mut self.hops[index].pending);
        for command in pending {
            self.links.command(now, key, command);
        }
        self.links_said();
    }

    fn session_command(&mut self, index: usize, command: MsrpCommand) {
        let now = self.now;
        match self.hops[index].session {
            Some(key) => {
                self.links.command(now, key, command);
                self.links_said();
            }
            None => self.hops[index].pending.push(command),
        }
    }

    /// The member (the Request-URI of its leg) hop `index` leads to; `None`
    /// for the upstream hop.
    fn member_of(&self, index: usize) -> Option<String> {
        self.down.iter().find(|l| l.hop == index).map(|l| l.member.clone())
    }

    /// The session of hop `index`.
    fn session(&self, index: usize) -> Option<&Session> {
        self.hops.get(index).and_then(|h| h.session).and_then(|key| self.links.session(key))
    }

    /// A REPORT on hop `index`, held while messages sent before it on that
    /// hop are still going (so that the IMDNs a relay or the CF sent reach
    /// the sender before the REPORT that ends its wait).
    fn send_report(&mut self, index: usize, command: MsrpCommand) {
        self.hops[index].done = true;
        let busy = self.deferred_reports.iter().any(|(i, _)| *i == index)
            || self.session(index).is_some_and(|s| s.outgoing_messages() > 0);
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
        let session = self.session(index);
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
            let free = self.session(index).map_or(true, |s| s.outgoing_messages() == 0 || !s.is_link_up());
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

    /// Drains every inner machine into `out` until nothing moves (the MSRP
    /// sessions' events come back as [`Work::Msrp`]).
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
            }
            if !moved {
                break;
            }
        }
        if self.config.slow_member.is_some() {
            let before = self.out.len();
            self.with_role(|role, step| role.after_input(step));
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
                let member = self.member_of(index);
                self.event(Event::HopFailed { member });
                // A hop without its link ends its SIP leg; the relay rules then
                // end the other side (all members gone, or the upstream gone).
                if let Some(leg) = self.up.as_ref().filter(|l| l.hop == index && !l.ended).map(|l| l.leg) {
                    let _ = self.ua_input(ua::Input::Command(ua::Command::End { leg }));
                } else if let Some(pos) = self.down.iter().position(|l| l.hop == index && !l.ended) {
                    self.end_down(pos);
                }
            }
            HopOutput::PresetOverridden { .. } => {
                let hop = self.hops[index].label.clone();
                self.event(Event::PresetOverridden { hop });
            }
            _ => {}
        }
    }

    /// An event of hop `index`'s MSRP session: the link's and the errors
    /// here, the rest the role's.
    fn msrp_event(&mut self, index: usize, event: MsrpEvent) {
        match event {
            // RFC 4975 s.5.4: the first request binds the session to its link.
            MsrpEvent::Bound => self.link_up(index),
            MsrpEvent::PeerError { error } => {
                self.event(Event::PeerError { error: PeerError::Msrp(error) });
            }
            MsrpEvent::SendFailed { status, .. } => {
                if self.with_role(|role, step| role.send_failed(step, index, status)) == Some(true) {
                    return;
                }
                if self.hops[index].done {
                    // Something sent after the hop's work (an IMDN) is lost: nothing to end.
                    return;
                }
                let member = self.member_of(index);
                self.event(Event::HopFailed { member });
                // The message cannot cross this hop: its SIP leg ends (a
                // member's failure is then that member's outcome).
                self.hop_lost(index);
            }
            event => {
                self.with_role(|role, step| role.msrp_event(step, index, event));
            }
        }
    }
}
