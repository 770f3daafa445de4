//! The hop relay of CPM's network entities (participating and controlling
//! functions): back-to-back MSRP endpoints that terminate one session per
//! hop and pass each message on, cut-through, to one session (a hop relay)
//! or to many (the controlling function's fan-out). Not an RFC 4976 relay
//! (no AUTH, no Use-Path): that one is [`crate::rfc4976::Relay`].
//!
//! A [`Relay`] wraps an [`Endpoint`] (links, sessions, routing; see
//! [`crate::link`]) and adds bridges: [`Command::Bridge`] ties an inbound
//! session to its outbound member sessions. The inbound session MUST use
//! [`DeliveryMode::Streaming`] and SHOULD have
//! [`SessionConfig::success_reports`](crate::session::SessionConfig::success_reports)
//! off (the final receiver reports, the relay re-addresses).
//!
//! # How a message crosses
//!
//! - **Responses are per hop.** The inbound session answers each SEND at once
//!   (RFC 4975 s.7.1.1), as any endpoint; nothing waits for downstream.
//! - **Cut-through, zero-copy.** On [`Event::MessageStarted`] every member
//!   gets a [`session::Command::Forward`] with the same Message-ID, content
//!   type, total (when the sender declared one, else `*`) and report
//!   policies. Each in-order piece ([`Event::ChunkReceived`]) goes to every
//!   member as [`session::Command::StreamOwned`] holding a clone of the same
//!   `Bytes` (a reference count, never a copy); the members chunk it as it
//!   comes (`1-*/total` or `1-*/*`). A piece shorter than the inbound
//!   session's
//!   [`SessionConfig::min_shared_piece`](crate::session::SessionConfig::min_shared_piece)
//!   is copied once, and the copy shared by every member
//!   ([`session::Command::StreamOwned`]), so that a few bytes never keep a
//!   whole read alive. The end of the message (or its abort
//!   `#`, or its refusal) is passed on the same way.
//! - **REPORTs go back hop by hop.** A member's REPORT for the message is
//!   re-addressed upstream on the inbound session ([`session::Command::Report`]).
//!   With one member (a hop relay) every REPORT is passed on as it is, and a
//!   member's failure without a REPORT (error response, 408, lost link,
//!   dropped as slow) becomes a failure REPORT upstream (status 408 when
//!   the failure has no status of its own), as the `Failure-Report` policy
//!   allows. With several members (a fan-out) one member's failure never
//!   becomes a failure REPORT upstream (SPEC "Acknowledgements": that would
//!   fail the sender's whole message): each member's fate is an
//!   [`Output::Outcome`] (the user turns failures into IMDNs), and once every
//!   member has one, a success REPORT covering the bytes received goes
//!   upstream if the sender asked for it.
//!
//! # Windows, back-pressure, slow members
//!
//! A member's *backlog* is what its session holds queued
//! ([`Session::queued_bytes`]) plus what its link has in flight (handed to
//! the runtime, not yet acknowledged with [`link::Input::Written`]). The
//! member is *full* when its backlog reaches [`RelayConfig::window`].
//!
//! - When every member with a message in progress is full, or any member's
//!   backlog reaches [`RelayConfig::max_backlog`], the relay asks the runtime
//!   to stop reading the inbound link ([`link::Output::PauseReading`]) and
//!   to resume ([`link::Output::ResumeReading`]) when that no longer holds.
//!   Memory per relayed message is therefore bounded by about
//!   `max_backlog` plus one read segment plus the inbound reassembler's
//!   out-of-order limit, whatever the message size.
//! - A member that stays full for [`RelayConfig::slow_member_timeout`] is
//!   dropped: its message is aborted with `#` (its queued bytes are freed at
//!   once, the `#` goes out when the link drains) and
//!   [`Outcome::Dropped`] names it; the others go on. The hard cap above
//!   means a stuck member can hold the others back for at most that time.
//!
//! [`Relay::held_bytes`] is the relay's own account of the body bytes it
//! holds; [`Relay::max_held_bytes`] its high-water mark.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use thiserror::Error;

use crate::deadline::later;
use crate::id::MessageId;
use crate::link::{self, Endpoint, EndpointConfig, SessionKey};
use crate::reassembly::DeliveryMode;
use crate::router::ConnId;
use crate::session::{self, Event, MessageHandle, Session};
use crate::wire::{ByteRange, FailureReport};

/// Windows and timers of a [`Relay`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// The endpoint's links and pacing.
    pub endpoint: EndpointConfig,
    /// A member's backlog at which it counts as full (default 256 KiB).
    pub window: usize,
    /// A member's backlog at which the relay stops reading the inbound link
    /// even though other members have room (default 1 MiB).
    pub max_backlog: usize,
    /// How long a member may stay full before its message is dropped
    /// (default 10 s).
    pub slow_member_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            endpoint: EndpointConfig::default(),
            window: 256 * 1024,
            max_backlog: 1 << 20,
            slow_member_timeout: Duration::from_secs(10),
        }
    }
}

/// What the user asks of the relay.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// From now on, messages arriving on `inbound` go out on every session
    /// of `outbound` (both opened on the endpoint before).
    Bridge {
        /// The session messages come in on.
        inbound: SessionKey,
        /// The sessions they go out on (one for a hop relay, N for a fan-out).
        outbound: Vec<SessionKey>,
    },
    /// Ends a bridge; messages in progress are aborted on every member.
    Unbridge {
        /// The inbound session of the bridge.
        inbound: SessionKey,
    },
}

/// What comes into the relay.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input {
    /// An input of the endpoint (links, timers, session commands).
    Link(link::Input),
    /// A relay command.
    Command(Command),
}

/// What happened to a relayed message on one member.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The member's side reported success: its REPORTs with status 200
    /// cover the whole message (RFC 4975 s.7.1.3; a REPORT for part of it
    /// is not a delivery).
    Delivered,
    /// A success REPORT was asked for and none covering the whole message
    /// came within the member session's
    /// [`SessionConfig::report_timeout`](crate::session::SessionConfig::report_timeout)
    /// of its last byte: the relay stops waiting and frees the message.
    NoReport,
    /// The next hop took every chunk; no success REPORT was asked for.
    Forwarded,
    /// The member failed: an error response or failure REPORT (its status),
    /// no response in time (408), its link lost or the message aborted
    /// upstream (0).
    Failed {
        /// The status.
        status: u16,
        /// Why.
        reason: &'static str,
    },
    /// The member's window stayed full past
    /// [`RelayConfig::slow_member_timeout`]: its message was aborted with `#`.
    Dropped,
}

/// What the relay asks of the runtime, or tells the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// An output of the endpoint. The inbound sessions' streamed pieces
    /// ([`Event::ChunkReceived`]) are consumed by the relay, not shown.
    Link(link::Output),
    /// A relayed message's fate on one member.
    Outcome {
        /// The bridge's inbound session.
        inbound: SessionKey,
        /// The member.
        member: SessionKey,
        /// The message.
        message_id: MessageId,
        /// What happened.
        outcome: Outcome,
    },
}

/// A caller's mistake; the relay's state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// The endpoint refused the input.
    #[error("endpoint: {0}")]
    Link(#[from] link::UsageError),
    /// A session of the bridge does not exist (or is its own member).
    #[error("unknown session in the bridge")]
    UnknownSession,
    /// The inbound session does not deliver in streaming mode.
    #[error("the inbound session must deliver in streaming mode")]
    NotStreaming,
    /// The inbound session is bridged already.
    #[error("the inbound session is bridged already")]
    DuplicateBridge,
    /// No bridge has this inbound session.
    #[error("no such bridge")]
    UnknownBridge,
}

#[derive(Debug)]
struct Leg {
    member: SessionKey,
    handle: MessageHandle,
    outcome: Option<Outcome>,
}

#[derive(Debug)]
struct Relayed {
    message_id: MessageId,
    success_report: bool,
    failure_report: FailureReport,
    /// Bytes received in order.
    received: u64,
    /// The inbound message ended (completed, aborted or refused).
    ended: bool,
    legs: Vec<Leg>,
}

impl Relayed {
    fn done(&self) -> bool {
        self.ended && self.legs.iter().all(|leg| leg.outcome.is_some())
    }
}

#[derive(Debug)]
struct Bridge {
    members: Vec<SessionKey>,
    messages: Vec<Relayed>,
}

/// Back-to-back MSRP sessions passing messages on, cut-through and zero-copy.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    endpoint: Endpoint,
    bridges: BTreeMap<SessionKey, Bridge>,
    /// A member's handle: the bridge (inbound) it serves.
    legs: HashMap<(SessionKey, MessageHandle), SessionKey>,
    /// Members full since then.
    full_since: BTreeMap<SessionKey, Instant>,
    /// Inbound links the relay paused.
    paused: BTreeSet<ConnId>,
    next_handle: u64,
    ready: VecDeque<Output>,
    last_now: Instant,
    max_held: usize,
    /// Reused by `check_windows`.
    scratch_drops: Vec<(SessionKey, SessionKey)>,
    scratch_pause: Vec<ConnId>,
}

/// A member's backlog: queued in its session plus in flight on its link.
fn backlog(endpoint: &Endpoint, member: SessionKey) -> usize {
    let queued = endpoint.session(member).map_or(0, Session::queued_bytes);
    let in_flight = endpoint.link_of(member).map_or(0, |conn| endpoint.in_flight(conn));
    queued.saturating_add(in_flight)
}

/// Handles the relay gives its members' messages: the top bit set.
const HANDLE_BASE: u64 = 1 << 63;

impl Relay {
    /// A relay with no session, link or bridge.
    #[must_use]
    pub fn new(config: RelayConfig, now: Instant) -> Self {
        let endpoint = Endpoint::new(config.endpoint.clone(), now);
        Self {
            config,
            endpoint,
            bridges: BTreeMap::new(),
            legs: HashMap::new(),
            full_since: BTreeMap::new(),
            paused: BTreeSet::new(),
            next_handle: HANDLE_BASE,
            ready: VecDeque::new(),
            last_now: now,
            max_held: 0,
            scratch_drops: Vec::new(),
            scratch_pause: Vec::new(),
        }
    }

    /// The endpoint (sessions and links).
    #[must_use]
    pub const fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Relayed messages in progress (not every member has an outcome yet,
    /// or the inbound message has not ended).
    #[must_use]
    pub fn messages_in_progress(&self) -> usize {
        self.bridges.values().map(|b| b.messages.len()).sum()
    }

    /// A member's backlog: bytes queued in its session plus bytes in flight
    /// on its link.
    #[must_use]
    pub fn backlog(&self, member: SessionKey) -> usize {
        backlog(&self.endpoint, member)
    }

    /// Body bytes the relay holds now, by its own account: out-of-order data
    /// of the inbound sessions, partial heads in the framers, and per bridge
    /// the largest member backlog (the members share the same `Bytes`, so
    /// the slowest member's backlog covers the others').
    #[must_use]
    pub fn held_bytes(&self) -> usize {
        let mut held = self.endpoint.framer_bytes();
        for (inbound, bridge) in &self.bridges {
            held += self.endpoint.session(*inbound).map_or(0, Session::held_bytes);
            held += bridge.members.iter().map(|m| self.backlog(*m)).max().unwrap_or(0);
        }
        held
    }

    /// Entries kept in queues and maps, the endpoint's included (a heap
    /// bound allows each a fixed overhead).
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn entries(&self) -> usize {
        let bridges: usize = self
            .bridges
            .values()
            .map(|b| 1 + b.members.len() + b.messages.iter().map(|m| 1 + m.legs.len()).sum::<usize>())
            .sum();
        self.endpoint.entries()
            + bridges
            + self.legs.len()
            + self.full_since.len()
            + self.paused.len()
            + self.ready.len()
    }

    /// The highest [`Relay::held_bytes`] seen after any [`Relay::handle`].
    #[must_use]
    pub const fn max_held_bytes(&self) -> usize {
        self.max_held
    }

    /// Feeds one input. Bad peer bytes never return `Err`.
    ///
    /// # Errors
    /// [`UsageError`] for a command or id the relay cannot take.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.last_now = self.last_now.max(now);
        let now = self.last_now;
        let result = match input {
            Input::Link(input) => self.endpoint.process(now, input).map_err(UsageError::from),
            Input::Command(command) => self.command(command),
        };
        self.settle(now);
        result
    }

    /// The next output, `None` when there is nothing more to do now.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.ready.pop_front()
    }

    /// When [`link::Input::Timeout`] is next due (session timers and slow members).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let slow = self.full_since.values().map(|since| later(*since, self.config.slow_member_timeout)).min();
        match (self.endpoint.poll_timeout(), slow) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn command(&mut self, command: Command) -> Result<(), UsageError> {
        match command {
            Command::Bridge { inbound, outbound } => {
                let session = self.endpoint.session(inbound).ok_or(UsageError::UnknownSession)?;
                if session.config().reassembly.mode != DeliveryMode::Streaming {
                    return Err(UsageError::NotStreaming);
                }
                if self.bridges.contains_key(&inbound) {
                    return Err(UsageError::DuplicateBridge);
                }
                if outbound.iter().any(|m| *m == inbound || self.endpoint.session(*m).is_none()) {
                    return Err(UsageError::UnknownSession);
                }
                self.bridges.insert(inbound, Bridge { members: outbound, messages: Vec::new() });
            }
            Command::Unbridge { inbound } => {
                if !self.bridges.contains_key(&inbound) {
                    return Err(UsageError::UnknownBridge);
                }
                self.abort_all(inbound, "the bridge was removed");
                if let Some(bridge) = self.bridges.remove(&inbound) {
                    for member in &bridge.members {
                        self.full_since.remove(member);
                    }
                }
            }
        }
        Ok(())
    }

    /// Drains the endpoint, reacting to what it says, until nothing moves.
    fn settle(&mut self, now: Instant) {
        for _ in 0..1_000_000 {
            self.endpoint.flush_all();
            let mut moved = false;
            while let Some(output) = self.endpoint.poll_output() {
                moved = true;
                self.output(output);
            }
            if !moved && !self.check_windows(now) {
                break;
            }
        }
        self.max_held = self.max_held.max(self.held_bytes());
    }

    fn send(&mut self, member: SessionKey, command: session::Command) -> bool {
        let input = link::Input::Command(link::Command::Session { key: member, command });
        self.endpoint.process(self.last_now, input).is_ok()
    }

    fn output(&mut self, output: link::Output) {
        match output {
            link::Output::Event { session, event } => {
                if self.bridges.contains_key(&session) && self.inbound_event(session, &event) {
                    return;
                }
                self.member_event(session, &event);
                self.ready.push_back(Output::Link(link::Output::Event { session, event }));
            }
            link::Output::LinkDown { conn, sessions } => {
                for key in &sessions {
                    if self.bridges.contains_key(key) {
                        self.abort_all(*key, "the inbound link was lost");
                    }
                }
                self.paused.remove(&conn);
                self.ready.push_back(Output::Link(link::Output::LinkDown { conn, sessions }));
            }
            other => self.ready.push_back(Output::Link(other)),
        }
    }

    /// An inbound session's event; `true` when the relay consumed it.
    fn inbound_event(&mut self, inbound: SessionKey, event: &Event) -> bool {
        match event {
            Event::MessageStarted { message_id, content_type, total, success_report, failure_report } => {
                let Some(bridge) = self.bridges.get(&inbound) else { return false };
                if bridge.messages.iter().any(|m| m.message_id == *message_id) {
                    return false;
                }
                let members = bridge.members.clone();
                let mut relayed = Relayed {
                    message_id: message_id.clone(),
                    success_report: *success_report,
                    failure_report: *failure_report,
                    received: 0,
                    ended: false,
                    legs: Vec::with_capacity(members.len()),
                };
                let content_type = content_type.clone().unwrap_or_else(|| "application/octet-stream".into());
                for member in members {
                    self.next_handle = self.next_handle.wrapping_add(1) | HANDLE_BASE;
                    let handle = MessageHandle::new(self.next_handle);
                    let forward = session::Command::Forward {
                        handle,
                        message_id: message_id.clone(),
                        content_type: content_type.clone(),
                        total: *total,
                        success_report: *success_report,
                        failure_report: *failure_report,
                    };
                    let outcome = if self.send(member, forward) {
                        self.legs.insert((member, handle), inbound);
                        None
                    } else {
                        Some(Outcome::Failed { status: 0, reason: "the member session refused the message" })
                    };
                    if let Some(outcome) = &outcome {
                        self.ready.push_back(Output::Outcome {
                            inbound,
                            member,
                            message_id: message_id.clone(),
                            outcome: outcome.clone(),
                        });
                    }
                    relayed.legs.push(Leg { member, handle, outcome });
                }
                if let Some(bridge) = self.bridges.get_mut(&inbound) {
                    bridge.messages.push(relayed);
                }
                false
            }
            Event::ChunkReceived { message_id, data, .. } => {
                self.pass_on(inbound, message_id, data.clone(), false);
                true
            }
            Event::MessageReceived { message_id, .. } => {
                self.pass_on(inbound, message_id, Bytes::new(), true);
                false
            }
            Event::MessageAborted { message_id } | Event::MessageDiscarded { message_id, .. } => {
                self.abort(inbound, message_id, "the message was aborted upstream");
                false
            }
            _ => false,
        }
    }

    /// Streams a piece (or the end) of an inbound message to every member still on it.
    fn pass_on(&mut self, inbound: SessionKey, message_id: &MessageId, data: Bytes, last: bool) {
        let Some(bridge) = self.bridges.get_mut(&inbound) else { return };
        let Some(index) = bridge.messages.iter().position(|m| m.message_id == *message_id) else { return };
        let mut relayed = bridge.messages.swap_remove(index);
        relayed.received += data.len() as u64;
        relayed.ended |= last;
        // A short piece of a large read would keep the whole read alive in
        // every member's queue: it is copied once here, and the copy shared.
        let min_shared = self.endpoint.session(inbound).map_or(0, |s| s.config().min_shared_piece);
        let copied = data.len() < min_shared;
        let data = if copied { Bytes::copy_from_slice(&data) } else { data };
        let mut failed = Vec::new();
        for leg in relayed.legs.iter().filter(|leg| leg.outcome.is_none()) {
            // The same `Bytes` for every member: a reference count each, never a
            // copy. Only the copy is self-contained: a long piece of a read
            // stays subject to the member's own rule for what it keeps.
            let (handle, data) = (leg.handle, data.clone());
            let command = if copied {
                session::Command::StreamOwned { handle, data, last }
            } else {
                session::Command::StreamData { handle, data, last }
            };
            if !self.send(leg.member, command) {
                failed.push(leg.member);
            }
        }
        for member in failed {
            self.settle_leg(
                inbound,
                &mut relayed,
                member,
                Outcome::Failed { status: 0, reason: "the member lost the message" },
            );
        }
        self.put_back(inbound, relayed);
    }

    /// Aborts an inbound message on every member still on it.
    fn abort(&mut self, inbound: SessionKey, message_id: &MessageId, reason: &'static str) {
        let Some(bridge) = self.bridges.get_mut(&inbound) else { return };
        let Some(index) = bridge.messages.iter().position(|m| m.message_id == *message_id) else { return };
        let mut relayed = bridge.messages.swap_remove(index);
        relayed.ended = true;
        // Upstream is gone: nothing is reported back for this message.
        relayed.success_report = false;
        relayed.failure_report = FailureReport::No;
        let open: Vec<(SessionKey, MessageHandle)> =
            relayed.legs.iter().filter(|leg| leg.outcome.is_none()).map(|leg| (leg.member, leg.handle)).collect();
        for (member, handle) in open {
            self.legs.remove(&(member, handle));
            let _ = self.send(member, session::Command::Abort { handle });
            self.settle_leg(inbound, &mut relayed, member, Outcome::Failed { status: 0, reason });
        }
        self.put_back(inbound, relayed);
    }

    fn abort_all(&mut self, inbound: SessionKey, reason: &'static str) {
        let ids: Vec<MessageId> = self
            .bridges
            .get(&inbound)
            .map(|b| b.messages.iter().filter(|m| !m.ended).map(|m| m.message_id.clone()).collect())
            .unwrap_or_default();
        for id in ids {
            self.abort(inbound, &id, reason);
        }
    }

    /// Keeps a relayed message while anything is owed on it.
    fn put_back(&mut self, inbound: SessionKey, relayed: Relayed) {
        if relayed.done() {
            for leg in &relayed.legs {
                self.legs.remove(&(leg.member, leg.handle));
            }
            if relayed.legs.len() > 1 && relayed.success_report {
                // A fan-out: one success REPORT once every member's fate is
                // known (SPEC "Acknowledgements"), covering what arrived.
                let total = relayed.received;
                let range = ByteRange { start: 1, end: Some(total), total: Some(total) };
                let report =
                    session::Command::Report { message_id: relayed.message_id, status: 200, byte_range: Some(range) };
                let _ = self.send(inbound, report);
            }
            return;
        }
        if let Some(bridge) = self.bridges.get_mut(&inbound) {
            bridge.messages.push(relayed);
        }
    }

    /// A member session's event about one of the relay's messages.
    fn member_event(&mut self, member: SessionKey, event: &Event) {
        let (handle, outcome, report) = match event {
            Event::MessageSent { handle } => (*handle, None, None),
            Event::SendFailed { handle, status, reason } => {
                (*handle, Some(Outcome::Failed { status: *status, reason }), None)
            }
            Event::MessageDelivered { handle } => (*handle, Some(Outcome::Delivered), None),
            Event::ReportTimedOut { handle } => (*handle, Some(Outcome::NoReport), None),
            // A success REPORT may cover part of the message: the session
            // says when they cover all of it (`MessageDelivered`); a failure
            // REPORT fails the message there (`SendFailed` follows).
            Event::ReportReceived { handle: Some(handle), status, byte_range, .. } => {
                (*handle, None, Some((*status, *byte_range)))
            }
            _ => return,
        };
        let Some(&inbound) = self.legs.get(&(member, handle)) else { return };
        let Some(bridge) = self.bridges.get_mut(&inbound) else { return };
        let Some(index) =
            bridge.messages.iter().position(|m| m.legs.iter().any(|l| l.member == member && l.handle == handle))
        else {
            return;
        };
        let mut relayed = bridge.messages.swap_remove(index);
        let single = relayed.legs.len() == 1;
        let outcome = match outcome {
            Some(outcome) => Some(outcome),
            // Sent, and no REPORT will come: the hop took it.
            None if !relayed.success_report => Some(Outcome::Forwarded),
            None => None,
        };
        if let Some((status, byte_range)) = report {
            // A hop relay passes each of the final receiver's REPORTs on as
            // it is (partial ones too: the sender counts the ranges).
            let open = relayed.legs.first().is_some_and(|leg| leg.outcome.is_none());
            if single && open && self.report_wanted(&relayed, status) {
                let report = session::Command::Report { message_id: relayed.message_id.clone(), status, byte_range };
                let _ = self.send(inbound, report);
                if status != 200 {
                    // Reported already: the failure adds no second REPORT.
                    relayed.failure_report = FailureReport::No;
                }
            }
            return self.put_back(inbound, relayed);
        }
        if let Some(outcome) = outcome {
            self.settle_leg(inbound, &mut relayed, member, outcome);
        }
        self.put_back(inbound, relayed);
    }

    fn report_wanted(&self, relayed: &Relayed, status: u16) -> bool {
        if status == 200 {
            relayed.success_report
        } else {
            relayed.failure_report != FailureReport::No
        }
    }

    /// Gives a leg its outcome (once), says so, and reports upstream when due.
    fn settle_leg(&mut self, inbound: SessionKey, relayed: &mut Relayed, member: SessionKey, outcome: Outcome) {
        let Some(leg) = relayed.legs.iter_mut().find(|l| l.member == member && l.outcome.is_none()) else { return };
        leg.outcome = Some(outcome.clone());
        self.ready.push_back(Output::Outcome {
            inbound,
            member,
            message_id: relayed.message_id.clone(),
            outcome: outcome.clone(),
        });
        if relayed.legs.len() == 1 {
            // A hop: the downstream failure becomes a failure REPORT upstream
            // (the per-hop 200 went out long ago).
            let status = match outcome {
                Outcome::Failed { status, .. } if status >= 400 => Some(status),
                Outcome::Failed { .. } | Outcome::Dropped => Some(408),
                // The sender runs its own wait for REPORTs.
                Outcome::Delivered | Outcome::Forwarded | Outcome::NoReport => None,
            };
            if let Some(status) = status {
                if self.report_wanted(relayed, status) {
                    let report =
                        session::Command::Report { message_id: relayed.message_id.clone(), status, byte_range: None };
                    let _ = self.send(inbound, report);
                }
            }
        }
    }

    /// Slow members and back-pressure; `true` when something changed.
    /// Allocates nothing in the steady state (it runs after every input).
    fn check_windows(&mut self, now: Instant) -> bool {
        let mut changed = false;
        let mut drops = std::mem::take(&mut self.scratch_drops);
        let mut pause = std::mem::take(&mut self.scratch_pause);
        drops.clear();
        pause.clear();
        let (window, cap, timeout) = (self.config.window, self.config.max_backlog, self.config.slow_member_timeout);
        for (inbound, bridge) in &self.bridges {
            let mut all_full = true;
            let mut any_busy = false;
            let mut over_cap = false;
            for (i, member) in bridge.members.iter().enumerate() {
                // Legs are made in member order: leg `i` is this member's.
                let busy = bridge.messages.iter().any(|r| r.legs.get(i).is_some_and(|l| l.outcome.is_none()));
                if !busy {
                    self.full_since.remove(member);
                    continue;
                }
                any_busy = true;
                let backlog = backlog(&self.endpoint, *member);
                if backlog < window {
                    self.full_since.remove(member);
                    all_full = false;
                    continue;
                }
                let since = *self.full_since.entry(*member).or_insert(now);
                if now >= later(since, timeout) {
                    self.full_since.remove(member);
                    drops.push((*inbound, *member));
                    all_full = false;
                    continue;
                }
                over_cap |= backlog >= cap;
            }
            if (any_busy && all_full) || over_cap {
                if let Some(conn) = self.endpoint.link_of(*inbound) {
                    if !pause.contains(&conn) {
                        pause.push(conn);
                    }
                }
            }
        }
        for (inbound, member) in drops.drain(..) {
            self.drop_member(inbound, member);
            changed = true;
        }
        while let Some(conn) = self.paused.iter().find(|c| !pause.contains(c)).copied() {
            self.paused.remove(&conn);
            self.endpoint.set_reading(conn, true);
            changed = true;
        }
        for conn in pause.drain(..) {
            if self.paused.insert(conn) {
                self.endpoint.set_reading(conn, false);
                changed = true;
            }
        }
        self.scratch_drops = drops;
        self.scratch_pause = pause;
        changed
    }

    /// Aborts every message of the bridge on a member that does not drain.
    fn drop_member(&mut self, inbound: SessionKey, member: SessionKey) {
        let Some(bridge) = self.bridges.get_mut(&inbound) else { return };
        let mut messages = std::mem::take(&mut bridge.messages);
        for relayed in &mut messages {
            let Some(handle) =
                relayed.legs.iter().find(|l| l.member == member && l.outcome.is_none()).map(|l| l.handle)
            else {
                continue;
            };
            self.legs.remove(&(member, handle));
            // RFC 4975 s.7.1: the chunk in progress ends with "#"; the queued bytes go.
            let _ = self.send(member, session::Command::Abort { handle });
            self.settle_leg(inbound, relayed, member, Outcome::Dropped);
        }
        for relayed in messages {
            self.put_back(inbound, relayed);
        }
    }
}
