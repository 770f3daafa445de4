//! B2BUA legs: one inbound INVITE leg paired with one or many outbound legs
//! (a participating function has one, the controlling function fans out to
//! every member), on a [`UserAgent`].
//!
//! The caller picks the policies (the source documents, "CF answer policy", "ACK policy"):
//! - [`AnswerPolicy`]: answer the inbound leg at once, or after the first
//!   outbound 2xx;
//! - [`AckPolicy`]: ACK an outbound 2xx when the inbound ACK arrives, or as
//!   soon as that 2xx arrives. An outbound ACK is never sent before its 2xx:
//!   under `AfterAck`, an inbound ACK that comes first leaves it pending until
//!   the 2xx;
//! - [`LastLegPolicy`]: whether the inbound leg ends when the last outbound
//!   leg has ended.
//!
//! An outbound leg that fails (300-699, timeout) or that its far side ends
//! (BYE) ends alone and is reported ([`Event::OutboundEnded`]). Ending the
//! inbound leg (BYE or CANCEL from its side, [`Command::Hangup`]) ends every
//! outbound leg: CANCEL while pending, BYE once answered (after the ACK).
//!
//! Bodies are opaque: the caller gives the body of each INVITE and of the
//! inbound 2xx (a CPM entity rewrites SDP per hop).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Instant;

use bytes::Bytes;
use thiserror::Error;

pub use crate::ids::{FlowId, IdSource, LegId};
use crate::sip::Message;
use crate::transaction::Transport;
use crate::ua::{self, EndReason, UaConfig, UserAgent};

/// When the inbound leg gets its 2xx.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AnswerPolicy {
    /// At once, on [`Command::Accept`].
    Immediately,
    /// On the first outbound 2xx from any destination.
    AfterFirstAnswer,
}

/// When an outbound leg's 2xx is ACKed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AckPolicy {
    /// When the inbound ACK has arrived (and the leg's 2xx).
    AfterAck,
    /// As soon as the leg's 2xx arrives.
    On200,
}

/// What happens to the inbound leg when its last outbound leg has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LastLegPolicy {
    /// End it: the final status of the last failure while unanswered, BYE once answered.
    EndInbound,
    /// Keep it until its side ends it or [`Command::Hangup`].
    KeepInbound,
}

/// B2BUA settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct B2buaConfig {
    ua: UaConfig,
    answer: AnswerPolicy,
    ack: AckPolicy,
    last_leg: LastLegPolicy,
}

impl B2buaConfig {
    /// A B2BUA on a user agent configured by `ua` (its auto-ACK is turned off:
    /// the ACK policy decides).
    #[must_use]
    pub fn new(mut ua: UaConfig, answer: AnswerPolicy, ack: AckPolicy, last_leg: LastLegPolicy) -> Self {
        ua.set_auto_ack(false);
        Self { ua, answer, ack, last_leg }
    }
    /// The answer policy.
    #[must_use]
    pub const fn answer(&self) -> AnswerPolicy {
        self.answer
    }
    /// The ACK policy.
    #[must_use]
    pub const fn ack(&self) -> AckPolicy {
        self.ack
    }
    /// The last-leg policy.
    #[must_use]
    pub const fn last_leg(&self) -> LastLegPolicy {
        self.last_leg
    }
}

/// One outbound leg to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// The caller's name for the leg (an outbound [`LegId::new`]).
    pub leg: LegId,
    /// The first hop.
    pub flow: FlowId,
    /// Its transport.
    pub transport: Transport,
    /// The Request-URI.
    pub target: String,
    /// The From URI.
    pub from: String,
    /// The INVITE body.
    pub body: Bytes,
    /// Its Content-Type.
    pub content_type: Option<String>,
}

/// What the caller asks of the B2BUA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Take an inbound call: start the outbound legs (fan-out), and answer
    /// with `answer_body` per the answer policy.
    Accept {
        /// The inbound leg of [`Event::IncomingCall`].
        inbound: LegId,
        /// The body of the inbound 2xx.
        answer_body: Bytes,
        /// Its Content-Type.
        content_type: Option<String>,
        /// The outbound legs (none is allowed with [`LastLegPolicy::KeepInbound`]).
        outbound: Vec<Outbound>,
    },
    /// Add an outbound leg to a call.
    AddOutbound {
        /// The call's inbound leg.
        inbound: LegId,
        /// The leg.
        outbound: Outbound,
    },
    /// Refuse an inbound call.
    Reject {
        /// The inbound leg.
        inbound: LegId,
        /// 300-699.
        code: u16,
    },
    /// End an inbound leg and all its outbound legs.
    Hangup {
        /// The inbound leg.
        inbound: LegId,
    },
    /// End one outbound leg.
    HangupOutbound {
        /// The outbound leg.
        leg: LegId,
    },
}

/// What comes into the B2BUA.
pub type Input = crate::machine::Input<Command>;

/// What the B2BUA asks of the runtime, or tells the caller.
pub type Output = crate::machine::Output<Event>;

/// What the B2BUA tells the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A new inbound INVITE: [`Command::Accept`] or [`Command::Reject`] it.
    IncomingCall {
        /// The inbound leg.
        inbound: LegId,
        /// The INVITE (its body is the upstream offer).
        request: Message,
    },
    /// The inbound leg got its 2xx.
    InboundAnswered {
        /// The inbound leg.
        inbound: LegId,
    },
    /// The inbound ACK arrived.
    InboundAcked {
        /// The inbound leg.
        inbound: LegId,
    },
    /// An outbound leg got its 2xx.
    OutboundAnswered {
        /// The call's inbound leg.
        inbound: LegId,
        /// The outbound leg.
        leg: LegId,
        /// The 2xx (its body is the downstream answer).
        response: Message,
    },
    /// The ACK of an outbound leg's 2xx was sent.
    OutboundAcked {
        /// The call's inbound leg.
        inbound: LegId,
        /// The outbound leg.
        leg: LegId,
    },
    /// An outbound leg ended (alone, or because the inbound leg ended).
    OutboundEnded {
        /// The call's inbound leg.
        inbound: LegId,
        /// The outbound leg.
        leg: LegId,
        /// Why.
        reason: EndReason,
    },
    /// The inbound leg ended; every outbound leg is being ended.
    InboundEnded {
        /// The inbound leg.
        inbound: LegId,
        /// Why.
        reason: EndReason,
    },
    /// A non-INVITE request the B2BUA does not handle was answered 405 or
    /// a peer message was dropped.
    PeerError {
        /// The flow it came on.
        flow: FlowId,
        /// Why.
        reason: &'static str,
    },
}

/// A caller's mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum UsageError {
    /// No call or leg has this id.
    #[error("unknown leg")]
    UnknownLeg,
    /// The call was already accepted, or the leg id is in use.
    #[error("the command does not fit the call's state")]
    WrongState,
    /// The user agent refused the command.
    #[error("user agent: {0}")]
    Ua(#[from] ua::UsageError),
}

#[derive(Debug, Default)]
struct Out {
    answered: bool,
    acked: bool,
}

#[derive(Debug)]
struct Call {
    accepted: bool,
    answer: Option<(Bytes, Option<String>)>,
    answered: bool,
    inbound_acked: bool,
    inbound_ended: bool,
    outbound: HashMap<LegId, Out>,
    last_failure: Option<EndReason>,
}

/// A B2BUA. See the module docs.
pub struct B2bua {
    config: B2buaConfig,
    ua: UserAgent,
    last_now: Instant,
    calls: HashMap<LegId, Call>,
    owner: HashMap<LegId, LegId>,
    ready: VecDeque<Output>,
}

impl fmt::Debug for B2bua {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("B2bua").field("calls", &self.calls.len()).field("ua", &self.ua).finish_non_exhaustive()
    }
}

impl B2bua {
    /// A B2BUA with no calls.
    pub fn new(config: B2buaConfig, now: Instant, ids: Box<dyn IdSource + Send>) -> Self {
        let ua = UserAgent::new(config.ua.clone(), now, ids);
        Self { config, ua, last_now: now, calls: HashMap::new(), owner: HashMap::new(), ready: VecDeque::new() }
    }

    /// The user agent underneath.
    #[must_use]
    pub const fn ua(&self) -> &UserAgent {
        &self.ua
    }

    /// Calls not yet over (inbound leg or some outbound leg alive).
    #[must_use]
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Whether nothing is left.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.ua.is_idle()
    }

    /// Feeds one input. Bad peer input never returns `Err`.
    ///
    /// # Errors
    /// [`UsageError`] for a command that cannot be carried out.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), UsageError> {
        self.last_now = self.last_now.max(now);
        let result = match input {
            Input::Received { flow, transport, message } => {
                self.feed(ua::Input::Received { flow, transport, message });
                Ok(())
            }
            Input::Datagram { flow, bytes } => {
                self.feed(ua::Input::Datagram { flow, bytes });
                Ok(())
            }
            Input::Timeout => {
                self.feed(ua::Input::Timeout);
                Ok(())
            }
            Input::Command(command) => self.command(command),
        };
        self.pump();
        result
    }

    /// The next output, `None` when there is nothing more to do now.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.ready.pop_front()
    }

    /// When [`Input::Timeout`] is next due.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.ua.poll_timeout()
    }

    fn feed(&mut self, input: ua::Input) {
        let _ = self.ua.handle(self.last_now, input);
        self.pump();
    }

    fn ua_command(&mut self, command: ua::Command) -> Result<(), ua::UsageError> {
        self.ua.handle(self.last_now, ua::Input::Command(command))
    }

    fn pump(&mut self) {
        while let Some(output) = self.ua.poll_output() {
            match output {
                ua::Output::Transmit { flow, transport, bytes } => {
                    self.ready.push_back(Output::Transmit { flow, transport, bytes });
                }
                ua::Output::Event(event) => self.ua_event(event),
            }
        }
    }

    fn event(&mut self, event: Event) {
        self.ready.push_back(Output::Event(event));
    }

    fn command(&mut self, command: Command) -> Result<(), UsageError> {
        match command {
            Command::Accept { inbound, answer_body, content_type, outbound } => {
                let call = self.calls.get_mut(&inbound).ok_or(UsageError::UnknownLeg)?;
                if call.accepted || call.inbound_ended {
                    return Err(UsageError::WrongState);
                }
                call.accepted = true;
                call.answer = Some((answer_body, content_type));
                for leg in outbound {
                    if let Err(error) = self.start_outbound(inbound, leg) {
                        // Already started legs go on; the caller learns of the bad one.
                        self.pump();
                        return Err(error);
                    }
                }
                if self.config.answer == AnswerPolicy::Immediately {
                    self.answer_inbound(inbound);
                }
                self.check_last_leg(inbound);
                Ok(())
            }
            Command::AddOutbound { inbound, outbound } => {
                let call = self.calls.get(&inbound).ok_or(UsageError::UnknownLeg)?;
                if !call.accepted || call.inbound_ended {
                    return Err(UsageError::WrongState);
                }
                self.start_outbound(inbound, outbound)
            }
            Command::Reject { inbound, code } => {
                let call = self.calls.get(&inbound).ok_or(UsageError::UnknownLeg)?;
                if call.accepted || !(300..=699).contains(&code) {
                    return Err(UsageError::WrongState);
                }
                self.ua_command(ua::Command::Respond { leg: inbound, code, body: Bytes::new(), content_type: None })?;
                Ok(())
            }
            Command::Hangup { inbound } => {
                if !self.calls.contains_key(&inbound) {
                    return Err(UsageError::UnknownLeg);
                }
                // Ending the inbound leg ends every outbound leg, now.
                self.end_outbound_of(inbound);
                let _ = self.ua_command(ua::Command::End { leg: inbound });
                Ok(())
            }
            Command::HangupOutbound { leg } => {
                if !self.owner.contains_key(&leg) {
                    return Err(UsageError::UnknownLeg);
                }
                self.ua_command(ua::Command::End { leg })?;
                Ok(())
            }
        }
    }

    fn start_outbound(&mut self, inbound: LegId, out: Outbound) -> Result<(), UsageError> {
        if self.owner.contains_key(&out.leg) || out.leg.is_inbound() {
            return Err(UsageError::WrongState);
        }
        self.ua_command(ua::Command::Invite {
            leg: out.leg,
            flow: out.flow,
            transport: out.transport,
            target: out.target,
            from: out.from,
            body: out.body,
            content_type: out.content_type,
        })?;
        self.owner.insert(out.leg, inbound);
        if let Some(call) = self.calls.get_mut(&inbound) {
            call.outbound.insert(out.leg, Out::default());
        }
        Ok(())
    }

    fn answer_inbound(&mut self, inbound: LegId) {
        let Some(call) = self.calls.get_mut(&inbound) else { return };
        if call.answered || call.inbound_ended {
            return;
        }
        let Some((body, content_type)) = call.answer.clone() else { return };
        call.answered = true;
        if self.ua_command(ua::Command::Respond { leg: inbound, code: 200, body, content_type }).is_ok() {
            self.event(Event::InboundAnswered { inbound });
        }
    }

    fn ack_outbound(&mut self, inbound: LegId, leg: LegId) {
        let Some(out) = self.calls.get_mut(&inbound).and_then(|c| c.outbound.get_mut(&leg)) else { return };
        // The source documents, "ACK policy": "The CF never sends ACK#3 before it has 200#3".
        if !out.answered || out.acked {
            return;
        }
        out.acked = true;
        if self.ua_command(ua::Command::Ack { leg }).is_ok() {
            self.event(Event::OutboundAcked { inbound, leg });
        }
    }

    fn end_outbound_of(&mut self, inbound: LegId) {
        let legs: Vec<LegId> =
            self.calls.get(&inbound).map(|c| c.outbound.keys().copied().collect()).unwrap_or_default();
        let mut legs = legs;
        legs.sort();
        for leg in legs {
            let _ = self.ua_command(ua::Command::End { leg });
        }
    }

    /// Ends the inbound leg when its last outbound leg is gone (policy).
    fn check_last_leg(&mut self, inbound: LegId) {
        if self.config.last_leg != LastLegPolicy::EndInbound {
            return;
        }
        let Some(call) = self.calls.get(&inbound) else { return };
        if !call.accepted || call.inbound_ended || !call.outbound.is_empty() {
            return;
        }
        if call.answered {
            let _ = self.ua_command(ua::Command::End { leg: inbound });
        } else {
            let code = match call.last_failure {
                Some(EndReason::Rejected { status }) => status,
                Some(EndReason::TimedOut) => 408,
                _ => 480,
            };
            let _ =
                self.ua_command(ua::Command::Respond { leg: inbound, code, body: Bytes::new(), content_type: None });
        }
    }

    fn forget_if_over(&mut self, inbound: LegId) {
        if self.calls.get(&inbound).is_some_and(|c| c.inbound_ended && c.outbound.is_empty()) {
            self.calls.remove(&inbound);
        }
    }

    fn ua_event(&mut self, event: ua::Event) {
        match event {
            ua::Event::IncomingCall { leg, request } => {
                self.calls.insert(
                    leg,
                    Call {
                        accepted: false,
                        answer: None,
                        answered: false,
                        inbound_acked: false,
                        inbound_ended: false,
                        outbound: HashMap::new(),
                        last_failure: None,
                    },
                );
                self.event(Event::IncomingCall { inbound: leg, request });
            }
            ua::Event::Answered { leg, response } => {
                let Some(&inbound) = self.owner.get(&leg) else { return };
                let Some(call) = self.calls.get_mut(&inbound) else { return };
                if let Some(out) = call.outbound.get_mut(&leg) {
                    out.answered = true;
                }
                let (inbound_acked, inbound_ended) = (call.inbound_acked, call.inbound_ended);
                self.event(Event::OutboundAnswered { inbound, leg, response });
                if inbound_ended {
                    // The inbound side is gone: ACK and BYE this late answer.
                    let _ = self.ua_command(ua::Command::End { leg });
                    return;
                }
                if self.config.answer == AnswerPolicy::AfterFirstAnswer {
                    self.answer_inbound(inbound);
                }
                if self.config.ack == AckPolicy::On200 || inbound_acked {
                    self.ack_outbound(inbound, leg);
                }
            }
            ua::Event::Acked { leg, .. } => {
                let Some(call) = self.calls.get_mut(&leg) else { return };
                call.inbound_acked = true;
                let mut legs: Vec<LegId> = call.outbound.iter().filter(|(_, o)| o.answered).map(|(l, _)| *l).collect();
                legs.sort();
                self.event(Event::InboundAcked { inbound: leg });
                for out in legs {
                    self.ack_outbound(leg, out);
                }
            }
            ua::Event::Ended { leg, reason } => {
                if let Some(inbound) = self.owner.remove(&leg) {
                    if let Some(call) = self.calls.get_mut(&inbound) {
                        call.outbound.remove(&leg);
                        call.last_failure = Some(reason);
                    }
                    self.event(Event::OutboundEnded { inbound, leg, reason });
                    self.check_last_leg(inbound);
                    self.forget_if_over(inbound);
                } else if let Some(call) = self.calls.get_mut(&leg) {
                    call.inbound_ended = true;
                    self.event(Event::InboundEnded { inbound: leg, reason });
                    self.end_outbound_of(leg);
                    self.forget_if_over(leg);
                }
            }
            ua::Event::RequestReceived { incoming, .. } => {
                // Only INVITE sessions are bridged: other requests get 405.
                let _ = self.ua_command(ua::Command::RespondRequest { incoming, code: 405 });
            }
            ua::Event::PeerError { flow, reason } => self.event(Event::PeerError { flow, reason }),
            ua::Event::Progress { .. } | ua::Event::RequestCompleted { .. } => {}
        }
    }
}
