//! The three link-establishment strategies of seed 001 as data: for every hop,
//! who opens it and on which trigger, plus the controlling function's answer
//! policy and the B2BUAs' ACK policy (the source documents, "The three link-establishment
//! strategies" and "Variants inside the figures").
//!
//! Active/passive is carried in SDP: each preset only decides which opener an
//! answerer asks for in its `a=setup` ([`Preset::want_opener`], then
//! [`answer_setup`](crate::negotiate::answer_setup)); offers are always
//! `actpass`.

use std::fmt;

use crate::negotiate::Side;

/// One of the three strategies of seed 001.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LinkStrategy {
    /// Solution 1 (FIG1, FIG2): the sender of each INVITE opens the hop.
    InviteInitiator,
    /// Solution 2 (FIG3, FIG4): the receiver of each INVITE opens the hop, after its ACK.
    InviteReceiver,
    /// Solution 3 (FIG5-FIG7): links are opened from the clients towards the network.
    ClientInitiative,
}

/// A media hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Hop {
    /// Client A - PF(A) (INVITE#1).
    L1,
    /// PF(A) - CF (INVITE#2).
    L2,
    /// CF - PF(B) (INVITE#3).
    L3,
    /// PF(B) - Client B (INVITE#4).
    L4,
    /// CF - IWF, through the ISF (seed 000: INVITE#3, forwarded as INVITE#4).
    L3Iwf,
}

impl Hop {
    /// Every hop.
    pub const ALL: [Self; 5] = [Self::L1, Self::L2, Self::L3, Self::L4, Self::L3Iwf];

    /// The entity that sends the INVITE on this hop.
    #[must_use]
    pub const fn offerer(self) -> Entity {
        match self {
            Self::L1 => Entity::ClientA,
            Self::L2 => Entity::ParticipatingA,
            Self::L3 | Self::L3Iwf => Entity::Controlling,
            Self::L4 => Entity::ParticipatingB,
        }
    }

    /// The entity that answers the INVITE on this hop.
    #[must_use]
    pub const fn answerer(self) -> Entity {
        match self {
            Self::L1 => Entity::ParticipatingA,
            Self::L2 => Entity::Controlling,
            Self::L3 => Entity::ParticipatingB,
            Self::L4 => Entity::ClientB,
            Self::L3Iwf => Entity::Iwf,
        }
    }

    /// The entity on `side` of this hop.
    #[must_use]
    pub const fn entity(self, side: Side) -> Entity {
        match side {
            Side::Offerer => self.offerer(),
            Side::Answerer => self.answerer(),
        }
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::L1 => "L1",
            Self::L2 => "L2",
            Self::L3 => "L3",
            Self::L4 => "L4",
            Self::L3Iwf => "L3(IWF)",
        })
    }
}

/// The entities of the source documents that terminate a media hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Entity {
    /// CPM Client A (sender).
    ClientA,
    /// Participating Function A (originating).
    ParticipatingA,
    /// Controlling Function X.
    Controlling,
    /// Participating Function B (terminating).
    ParticipatingB,
    /// CPM Client B (receiver).
    ClientB,
    /// Interworking Function.
    Iwf,
}

impl Entity {
    /// The name used in the source documents' tables.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientA => "A",
            Self::ParticipatingA => "PF(A)",
            Self::Controlling => "CF",
            Self::ParticipatingB => "PF(B)",
            Self::ClientB => "B",
            Self::Iwf => "IWF",
        }
    }
}

/// What starts the opener's connect.
///
/// For the offerer of a hop: `OnSuccessResponse` is the 200 from downstream on
/// this hop, `OnAck` the ACK from upstream (the previous hop), `OnFirstSend`
/// the first MSRP SEND from upstream. For the answerer: `OnAck` is the ACK on
/// this hop, `OnSuccessResponse` the 200 it sent (RFC 4145 lets an active
/// answerer connect once it answered); `OnFirstSend` cannot apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Trigger {
    /// On the 200 (received by an offerer, sent by an answerer).
    OnSuccessResponse,
    /// On the ACK (from upstream for an offerer, on the hop for an answerer).
    OnAck,
    /// On the first MSRP SEND from upstream (offerers only).
    OnFirstSend,
}

impl Trigger {
    /// A short name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OnSuccessResponse => "on-200",
            Self::OnAck => "on-ack",
            Self::OnFirstSend => "on-first-send",
        }
    }
}

/// When the controlling function answers INVITE#2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AnswerPolicy {
    /// 200#2 at once on INVITE#2 (FIG1, FIG3, FIG7).
    Immediate,
    /// 200#2 after the first 200#3 from any destination (FIG2, FIG4, FIG5, FIG6).
    AfterFirstDestination,
}

/// When a B2BUA (PF or CF) generates the ACK on its downstream leg.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AckPolicy {
    /// When the upstream ACK arrives ("after-ack"); never before the downstream 200.
    AfterUpstreamAck,
    /// As soon as the downstream 200 arrives ("on-200").
    OnDownstreamSuccess,
}

/// Who opens one hop and the triggers it may use (the first is the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HopPlan {
    /// The hop.
    pub hop: Hop,
    /// The side that opens it.
    pub opener: Side,
    /// The entity that opens it.
    pub entity: Entity,
    /// The triggers the seeds allow; the first is the figures' default.
    pub triggers: &'static [Trigger],
}

impl HopPlan {
    /// The default trigger.
    #[must_use]
    pub fn trigger(&self) -> Trigger {
        self.triggers.first().copied().unwrap_or(Trigger::OnSuccessResponse)
    }
}

const OFFERER_ANY: &[Trigger] = &[Trigger::OnSuccessResponse, Trigger::OnAck, Trigger::OnFirstSend];
const OFFERER_ACK_FIRST: &[Trigger] = &[Trigger::OnAck, Trigger::OnSuccessResponse, Trigger::OnFirstSend];
const ON_200: &[Trigger] = &[Trigger::OnSuccessResponse];
const ON_ACK: &[Trigger] = &[Trigger::OnAck];

const fn plan(hop: Hop, opener: Side, triggers: &'static [Trigger]) -> HopPlan {
    HopPlan { hop, opener, entity: hop.entity(opener), triggers }
}

impl LinkStrategy {
    /// Every strategy.
    pub const ALL: [Self; 3] = [Self::InviteInitiator, Self::InviteReceiver, Self::ClientInitiative];

    /// The default plan of `hop` (the source documents' table, first alternative).
    #[must_use]
    pub const fn plan(self, hop: Hop) -> HopPlan {
        match (self, hop) {
            // invite-initiator: A after 200#1; PF(A) after ACK#1 (or 200#2, or SEND#1); CF after
            // 200#3 (or ACK#2, or SEND#2); PF(B) after ACK#3 (or 200#4, or SEND#3).
            (Self::InviteInitiator | Self::ClientInitiative, Hop::L1) => plan(hop, Side::Offerer, ON_200),
            (Self::InviteInitiator, Hop::L2 | Hop::L4) => plan(hop, Side::Offerer, OFFERER_ACK_FIRST),
            (Self::InviteInitiator, Hop::L3 | Hop::L3Iwf) => plan(hop, Side::Offerer, OFFERER_ANY),
            // invite-receiver: the receiver of INVITE#n, after ACK#n.
            (Self::InviteReceiver, _) => plan(hop, Side::Answerer, ON_ACK),
            // client-initiative: PF(A) after ACK#1/200#2/SEND#1; PF(B) after ACK#3; B after ACK#4.
            (Self::ClientInitiative, Hop::L2) => plan(hop, Side::Offerer, OFFERER_ACK_FIRST),
            (Self::ClientInitiative, Hop::L3 | Hop::L4 | Hop::L3Iwf) => plan(hop, Side::Answerer, ON_ACK),
        }
    }

    /// The other opener the seeds allow on `hop`, if any (client-initiative:
    /// CF after ACK#2 on L2, CF after 200#3/ACK#2/SEND#2 on L3).
    #[must_use]
    pub const fn alternative(self, hop: Hop) -> Option<HopPlan> {
        match (self, hop) {
            (Self::ClientInitiative, Hop::L2) => Some(plan(hop, Side::Answerer, ON_ACK)),
            (Self::ClientInitiative, Hop::L3 | Hop::L3Iwf) => Some(plan(hop, Side::Offerer, OFFERER_ANY)),
            _ => None,
        }
    }
}

/// A strategy with its choices made: the opener of L2 and L3 (where
/// client-initiative allows two), the trigger of the participating
/// functions' hops (L2 and L4 share it in invite-initiator) and the CF's
/// trigger for L3, plus the answer and ACK policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Preset {
    /// The strategy.
    pub strategy: LinkStrategy,
    /// Opener of L2 (only client-initiative may pick the answerer, the CF).
    pub l2_opener: Side,
    /// Opener of L3 (only client-initiative may pick the offerer, the CF).
    pub l3_opener: Side,
    /// Trigger of a PF that opens as offerer (L2, L4).
    pub pf_trigger: Trigger,
    /// Trigger of the CF when it opens L3 as offerer.
    pub cf_trigger: Trigger,
    /// The CF's answer policy.
    pub answer_policy: AnswerPolicy,
    /// ACK policy of PF(A), the CF and PF(B), in that order.
    pub ack_policy: [AckPolicy; 3],
}

impl Preset {
    /// The strategy with the seeds' default choices, CF answering at once
    /// and every B2BUA ACKing after the upstream ACK.
    #[must_use]
    pub const fn new(strategy: LinkStrategy) -> Self {
        Self {
            strategy,
            l2_opener: strategy.plan(Hop::L2).opener,
            l3_opener: strategy.plan(Hop::L3).opener,
            pf_trigger: strategy.plan(Hop::L2).triggers[0],
            cf_trigger: match strategy {
                LinkStrategy::InviteReceiver => Trigger::OnAck,
                _ => Trigger::OnSuccessResponse,
            },
            answer_policy: AnswerPolicy::Immediate,
            ack_policy: [AckPolicy::AfterUpstreamAck; 3],
        }
    }

    /// The preset a figure replays (the source documents, "Variants inside the figures").
    #[must_use]
    pub const fn figure(figure: Figure) -> Self {
        use AckPolicy::{AfterUpstreamAck as After, OnDownstreamSuccess as On200};
        use AnswerPolicy::{AfterFirstDestination as AfterFirst, Immediate};
        let (strategy, answer_policy, ack_policy) = match figure {
            Figure::Seed001Fig1 => (LinkStrategy::InviteInitiator, Immediate, [After, On200, After]),
            Figure::Seed001Fig2 => (LinkStrategy::InviteInitiator, AfterFirst, [After, On200, After]),
            Figure::Seed001Fig3 => (LinkStrategy::InviteReceiver, Immediate, [On200, On200, On200]),
            Figure::Seed001Fig4 => (LinkStrategy::InviteReceiver, AfterFirst, [On200, On200, On200]),
            Figure::Seed001Fig5 => (LinkStrategy::ClientInitiative, AfterFirst, [On200, On200, On200]),
            Figure::Seed001Fig6 => (LinkStrategy::ClientInitiative, AfterFirst, [After, After, After]),
            Figure::Seed001Fig7 => (LinkStrategy::ClientInitiative, Immediate, [After, After, After]),
            Figure::Seed000Fig1 => (LinkStrategy::InviteInitiator, AfterFirst, [After, After, After]),
        };
        let mut preset = Self::new(strategy);
        preset.answer_policy = answer_policy;
        preset.ack_policy = ack_policy;
        if let Figure::Seed000Fig1 = figure {
            // Seed 000 lists "L2 by PF(A) after 200#2 / ACK#1 / SEND#1" first.
            preset.pf_trigger = Trigger::OnSuccessResponse;
        }
        preset
    }

    /// Who opens `hop` and on which trigger, under this preset.
    #[must_use]
    pub fn hop(&self, hop: Hop) -> (Side, Entity, Trigger) {
        let base = self.strategy.plan(hop);
        let chosen = match hop {
            Hop::L2 => self.l2_opener,
            Hop::L3 | Hop::L3Iwf => self.l3_opener,
            _ => base.opener,
        };
        let opener =
            if chosen == base.opener || self.strategy.alternative(hop).is_some() { chosen } else { base.opener };
        let trigger = match (opener, hop) {
            (Side::Answerer, _) => Trigger::OnAck,
            (Side::Offerer, Hop::L1) => Trigger::OnSuccessResponse,
            (Side::Offerer, Hop::L2 | Hop::L4) => self.pf_trigger,
            (Side::Offerer, Hop::L3 | Hop::L3Iwf) => self.cf_trigger,
        };
        (opener, hop.entity(opener), trigger)
    }

    /// The opener an answerer on `hop` asks for in its `a=setup`.
    #[must_use]
    pub fn want_opener(&self, hop: Hop) -> Side {
        self.hop(hop).0
    }
}

/// The figures of the seeds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Figure {
    /// Seed 001 FIG1: invite-initiator, CF answers at once.
    Seed001Fig1,
    /// Seed 001 FIG2: invite-initiator, CF answers after the first destination.
    Seed001Fig2,
    /// Seed 001 FIG3: invite-receiver, CF answers at once.
    Seed001Fig3,
    /// Seed 001 FIG4: invite-receiver, CF answers after the first destination.
    Seed001Fig4,
    /// Seed 001 FIG5: client-initiative, on-200 ACKs.
    Seed001Fig5,
    /// Seed 001 FIG6: client-initiative, after-ack ACKs.
    Seed001Fig6,
    /// Seed 001 FIG7: client-initiative, CF answers at once.
    Seed001Fig7,
    /// Seed 000 FIG1: non-CPM receiver through the ISF and an IWF.
    Seed000Fig1,
}
