//! One link-establishment machine per hop: events in, actions out
//! ([`HopLink::handle`], then drain [`HopLink::poll_output`]); no timers of
//! its own (the owner reports a timeout).
//!
//! Built from the hop's side and the preset opener and trigger
//! ([`HopConfig`]). The `a=setup` values seen in the offer and the answer
//! decide the real opener ([`opener`]); when that differs from the preset,
//! negotiation wins, the machine emits [`Output::PresetOverridden`] and uses
//! the default trigger of the negotiated side (offerer: the 200; answerer:
//! the ACK). The opener connects once it knows the peer's parameters and its
//! trigger has happened; an offerer also waits for the 200 ("the peer always
//! from the 200 SDP, the trigger only decides when").
//!
//! Link reuse is the owner's business: the machine emits
//! [`Output::Connect`] with the [`LinkKey`](crate::negotiate::LinkKey) the
//! owner's link registry matches on, and the owner answers with
//! [`Input::LinkUp`] whether it opened a link or reused one.

use std::collections::VecDeque;

use crate::error::{Refusal, UsageError};
use crate::media::Setup;
use crate::negotiate::{opener, ConnectParams, Side};
use crate::strategy::Trigger;

/// How a hop machine starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct HopConfig {
    /// Our side of the hop's offer/answer.
    pub side: Side,
    /// The side the preset (or a negotiation done earlier) wants to open the hop.
    pub opener: Side,
    /// What starts the opener's connect.
    pub trigger: Trigger,
}

/// What happened on (or for) the hop.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// We (the offerer) sent our offer with this `a=setup`.
    OfferSent {
        /// Our `a=setup`.
        setup: Option<Setup>,
    },
    /// We (the answerer) received the peer's offer.
    OfferReceived {
        /// The offer's `a=setup`.
        setup: Option<Setup>,
        /// Where to connect to the offerer (`None`: port 0 or no path).
        peer: Option<ConnectParams>,
    },
    /// We (the answerer) sent our answer (in our 200) with this `a=setup`.
    AnswerSent {
        /// Our `a=setup`.
        setup: Option<Setup>,
    },
    /// We (the offerer) received the peer's answer (in its 200).
    AnswerReceived {
        /// The answer's `a=setup`.
        setup: Option<Setup>,
        /// Where to connect to the answerer (`None`: port 0 or no path).
        peer: Option<ConnectParams>,
    },
    /// We (the answerer) sent the 200.
    SuccessSent,
    /// We (the offerer) received the 200.
    SuccessReceived,
    /// We (the offerer) sent the ACK.
    AckSent,
    /// We (the answerer) received the ACK.
    AckReceived,
    /// The ACK from upstream arrived at this entity (on the previous hop):
    /// the `OnAck` trigger of an offerer.
    UpstreamAck,
    /// The first MSRP SEND from upstream arrived: the `OnFirstSend` trigger.
    FirstSend,
    /// The link is up: the owner's connect succeeded (or it reused a link),
    /// or the peer connected to us.
    LinkUp,
    /// The link went down or the connect failed.
    LinkDown,
    /// A timer of the owner for this hop expired.
    Timeout,
}

impl Input {
    fn name(&self) -> &'static str {
        match self {
            Self::OfferSent { .. } => "OfferSent",
            Self::OfferReceived { .. } => "OfferReceived",
            Self::AnswerSent { .. } => "AnswerSent",
            Self::AnswerReceived { .. } => "AnswerReceived",
            Self::SuccessSent => "SuccessSent",
            Self::SuccessReceived => "SuccessReceived",
            Self::AckSent => "AckSent",
            Self::AckReceived => "AckReceived",
            Self::UpstreamAck => "UpstreamAck",
            Self::FirstSend => "FirstSend",
            Self::LinkUp => "LinkUp",
            Self::LinkDown => "LinkDown",
            Self::Timeout => "Timeout",
        }
    }

    /// The side this input can happen on (`None`: both).
    fn side(&self) -> Option<Side> {
        match self {
            Self::OfferSent { .. } | Self::AnswerReceived { .. } | Self::SuccessReceived | Self::AckSent => {
                Some(Side::Offerer)
            }
            Self::OfferReceived { .. } | Self::AnswerSent { .. } | Self::SuccessSent | Self::AckReceived => {
                Some(Side::Answerer)
            }
            _ => None,
        }
    }
}

/// Why the hop could not be established.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Failure {
    /// The offer and answer do not agree on an opener (RFC 4145 s.4.1).
    Setup(Refusal),
    /// We must connect but the peer gave nothing to connect to (port 0 or no path).
    NoPeerParameters,
    /// The link went down (or the connect failed).
    LinkDown,
    /// The owner's timer for this hop expired before the link was up.
    Timeout,
}

/// What the owner must do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Open a link to these parameters, or reuse an existing link whose
    /// [`LinkKey`](crate::negotiate::LinkKey) matches; then report [`Input::LinkUp`].
    Connect {
        /// Where to connect.
        params: ConnectParams,
    },
    /// We are passive: wait for the peer to connect (it will send on the
    /// link first, RFC 6135 s.4.2.2); `expect` is the peer's path, when known.
    WaitForPeer {
        /// The peer's parameters, to recognise its first request.
        expect: Option<ConnectParams>,
    },
    /// The link is up.
    Ready,
    /// The hop failed; the machine is finished.
    Failed(Failure),
    /// The offer/answer chose another opener than the preset (RFC 4145 wins).
    PresetOverridden {
        /// What the preset wanted.
        preset: Side,
        /// What was negotiated.
        negotiated: Side,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Negotiating,
    Connecting,
    Waiting,
    Ready,
    Failed,
}

/// The link-establishment machine of one hop.
#[derive(Clone, Debug)]
pub struct HopLink {
    config: HopConfig,
    offer_setup: Option<Option<Setup>>,
    answer_setup: Option<Option<Setup>>,
    peer: Option<ConnectParams>,
    peer_known: bool,
    opener: Option<Side>,
    trigger: Trigger,
    triggered: bool,
    seen: u8,
    success: bool,
    link_up: bool,
    connects: u32,
    state: State,
    out: VecDeque<Output>,
}

impl HopLink {
    /// A machine for one side of one hop.
    ///
    /// # Errors
    /// [`UsageError::Trigger`] when the preset makes this side the answerer
    /// that opens on `OnFirstSend` (no SEND can reach it before it connects).
    pub fn new(config: HopConfig) -> Result<Self, UsageError> {
        if config.opener == Side::Answerer && config.trigger == Trigger::OnFirstSend {
            return Err(UsageError::Trigger(config.trigger.as_str()));
        }
        Ok(Self {
            config,
            offer_setup: None,
            answer_setup: None,
            peer: None,
            peer_known: false,
            opener: None,
            trigger: config.trigger,
            triggered: false,
            seen: 0,
            success: false,
            link_up: false,
            connects: 0,
            state: State::Negotiating,
            out: VecDeque::new(),
        })
    }

    /// The configuration.
    #[must_use]
    pub const fn config(&self) -> HopConfig {
        self.config
    }

    /// The negotiated opener, once offer and answer are known.
    #[must_use]
    pub const fn opener(&self) -> Option<Side> {
        self.opener
    }

    /// The trigger in use (the preset's, or the negotiated side's default).
    #[must_use]
    pub const fn trigger(&self) -> Trigger {
        self.trigger
    }

    /// How many [`Output::Connect`] were emitted (0 or 1).
    #[must_use]
    pub const fn connects(&self) -> u32 {
        self.connects
    }

    /// Whether the link is up.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// Whether the machine failed.
    #[must_use]
    pub fn is_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// Whether we are the passive side waiting for the peer.
    #[must_use]
    pub fn is_waiting(&self) -> bool {
        self.state == State::Waiting
    }

    /// Feeds one input. Inputs after the machine failed are ignored; a
    /// repeated offer or answer after the opener is known is ignored (a new
    /// offer/answer exchange gets a new machine).
    ///
    /// # Errors
    /// [`UsageError::WrongSide`] for an input of the other side (an offerer
    /// told it received an offer ...). Peer behaviour never returns `Err`.
    pub fn handle(&mut self, input: Input) -> Result<(), UsageError> {
        if input.side().is_some_and(|side| side != self.config.side) {
            return Err(UsageError::WrongSide(input.name()));
        }
        if self.state == State::Failed {
            return Ok(());
        }
        let side = self.config.side;
        match input {
            Input::OfferSent { setup } | Input::AnswerSent { setup } => {
                if self.opener.is_none() {
                    self.set_setup(side, setup);
                }
            }
            Input::OfferReceived { setup, peer } | Input::AnswerReceived { setup, peer } => {
                if self.opener.is_none() {
                    self.set_setup(side.peer(), setup);
                    self.peer = peer;
                    self.peer_known = true;
                }
            }
            Input::SuccessReceived => {
                self.success = true;
                self.trigger_if(side, Trigger::OnSuccessResponse);
            }
            Input::SuccessSent => {
                self.success = true;
                self.trigger_if(side, Trigger::OnSuccessResponse);
            }
            Input::AckSent => {}
            Input::AckReceived => self.trigger_if(Side::Answerer, Trigger::OnAck),
            Input::UpstreamAck => self.trigger_if(Side::Offerer, Trigger::OnAck),
            Input::FirstSend => self.trigger_if(Side::Offerer, Trigger::OnFirstSend),
            Input::LinkUp => {
                self.link_up = true;
                if matches!(self.state, State::Connecting | State::Waiting) {
                    self.state = State::Ready;
                    self.out.push_back(Output::Ready);
                }
            }
            Input::LinkDown => {
                self.link_up = false;
                if self.state != State::Negotiating || self.connects > 0 {
                    self.fail(Failure::LinkDown);
                }
            }
            Input::Timeout => {
                if self.state != State::Ready {
                    self.fail(Failure::Timeout);
                }
            }
        }
        self.progress();
        Ok(())
    }

    /// The next action, if any. The owner MUST drain it after every `handle`.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn set_setup(&mut self, writer: Side, setup: Option<Setup>) {
        match writer {
            Side::Offerer => self.offer_setup = Some(setup),
            Side::Answerer => self.answer_setup = Some(setup),
        }
    }

    fn trigger_if(&mut self, side: Side, trigger: Trigger) {
        if self.config.side == side && self.trigger == trigger {
            self.triggered = true;
        }
        // Remember triggers of the other kind too, in case negotiation changes the trigger.
        if self.config.side == side {
            self.seen |= trigger_bit(trigger);
        }
    }

    fn fail(&mut self, failure: Failure) {
        self.state = State::Failed;
        self.out.push_back(Output::Failed(failure));
    }

    fn progress(&mut self) {
        if self.state != State::Negotiating {
            return;
        }
        if self.opener.is_none() {
            let (Some(offer), Some(answer)) = (self.offer_setup, self.answer_setup) else { return };
            match opener(offer, answer) {
                Ok(side) => {
                    self.opener = Some(side);
                    if side != self.config.opener {
                        self.out.push_back(Output::PresetOverridden { preset: self.config.opener, negotiated: side });
                        self.trigger = match side {
                            Side::Offerer => Trigger::OnSuccessResponse,
                            Side::Answerer => Trigger::OnAck,
                        };
                        self.triggered = self.seen & trigger_bit(self.trigger) != 0;
                    }
                }
                Err(refusal) => return self.fail(Failure::Setup(refusal)),
            }
        }
        let Some(opener) = self.opener else { return };
        if opener != self.config.side {
            self.state = State::Waiting;
            self.out.push_back(Output::WaitForPeer { expect: self.peer.clone() });
            if self.link_up {
                self.state = State::Ready;
                self.out.push_back(Output::Ready);
            }
            return;
        }
        // We open the hop: once the trigger happened, the peer's parameters are known and, for an
        // offerer, its 200 (which carries the answer) arrived.
        let ready = self.triggered && self.peer_known && (self.config.side == Side::Answerer || self.success);
        if !ready {
            return;
        }
        let Some(params) = self.peer.clone() else { return self.fail(Failure::NoPeerParameters) };
        if self.link_up {
            // The owner already reported a link for this hop: nothing to open.
            self.state = State::Ready;
            self.out.push_back(Output::Ready);
            return;
        }
        self.state = State::Connecting;
        self.connects += 1;
        self.out.push_back(Output::Connect { params });
    }
}

const fn trigger_bit(trigger: Trigger) -> u8 {
    match trigger {
        Trigger::OnSuccessResponse => 1,
        Trigger::OnAck => 2,
        Trigger::OnFirstSend => 4,
    }
}
