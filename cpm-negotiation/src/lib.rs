//! OMA CPM large message mode, the negotiation layer: SDP offer/answer for
//! MSRP media (RFC 3264, RFC 4975 s.8, RFC 6135 `a=setup`, RFC 6714 CEMA),
//! where and who connects on each hop, the three link-establishment
//! strategies of seed 001 as data and as one small machine per hop, the
//! pager-or-large-message choice.
//!
//! Everything here is sans-IO and pure: functions take values and return
//! values; the one machine ([`HopLink`]) takes inputs through
//! [`HopLink::handle`] and gives actions through [`HopLink::poll_output`].
//! No sockets, clocks, timers or randomness: the owner (a `cpm-roles`
//! entity) reports timeouts and decides link reuse.
//!
//! - [`media`]: [`MsrpSdp::parse`] checks every `m=message` description;
//!   [`LocalMedia`] writes ours.
//! - [`negotiate`]: [`opener`], [`answer_setup`], [`connect_params`],
//!   [`build_offer`], [`answer_offer`], [`check_answer`].
//! - [`strategy`]: [`LinkStrategy`], [`Preset`], per-hop [`HopPlan`]s.
//! - [`hop`]: [`HopLink`], the per-hop machine.
//! - [`mode`]: pager or large message mode.
//!
//! Drain contract: after every `handle`, drain `poll_output` until it
//! returns `None`.
//!
//! ```
//! use bytes::Bytes;
//! use cpm_negotiation::{
//!     answer_offer, build_offer, check_answer, AnswerCheck, Capabilities, HopConfig, HopInput, HopLink,
//!     HopOutput, LinkStrategy, MediaType, MsrpSdp, Preset, Hop, Side,
//! };
//! use msrp_core::MsrpUri;
//!
//! let caps = Capabilities {
//!     accept_types: vec![MediaType::parse_str("message/cpim").unwrap()],
//!     accept_wrapped_types: vec![MediaType::parse_str("text/plain").unwrap()],
//!     max_size: Some(1 << 20),
//!     cema: false,
//! };
//! // Client A offers on L1; PF(A) answers as the invite-initiator preset wants.
//! let preset = Preset::new(LinkStrategy::InviteInitiator);
//! let offer = build_offer(MsrpUri::parse_str("msrp://192.0.2.1:7654/a1;tcp").unwrap(), &caps, None);
//! let offer_sdp = MsrpSdp::from_description(&offer.to_sdp("- 1 1 IN IP4 192.0.2.1").unwrap()).unwrap();
//! let answer = answer_offer(
//!     &offer_sdp,
//!     MsrpUri::parse_str("msrp://192.0.2.2:2855/pfa1;tcp").unwrap(),
//!     &caps,
//!     preset.want_opener(Hop::L1),
//! )
//! .unwrap();
//! let answer_sdp = MsrpSdp::from_description(&answer.media.to_sdp("- 2 1 IN IP4 192.0.2.2").unwrap()).unwrap();
//! let AnswerCheck::Usable(agreed) = check_answer(&offer, None, &answer_sdp) else { panic!() };
//! assert_eq!(agreed.opener, Side::Offerer);
//!
//! // Client A's machine for L1: it opens the hop after the 200.
//! let (opener, _, trigger) = preset.hop(Hop::L1);
//! let mut link = HopLink::new(HopConfig { side: Side::Offerer, opener, trigger }).unwrap();
//! let mut actions = Vec::new();
//! for input in [
//!     HopInput::OfferSent { setup: offer.setup },
//!     HopInput::AnswerReceived { setup: answer.media.setup, peer: agreed.connect.clone() },
//!     HopInput::SuccessReceived,
//!     HopInput::LinkUp,
//! ] {
//!     link.handle(input).unwrap();
//!     while let Some(action) = link.poll_output() {
//!         actions.push(action);
//!     }
//! }
//! assert!(matches!(&actions[0], HopOutput::Connect { params } if params.key.to_string() == "192.0.2.2:2855"));
//! assert_eq!(actions[1], HopOutput::Ready);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cpim;
mod error;
pub mod hop;
pub mod imdn;
pub mod media;
pub mod mode;
pub mod negotiate;
pub mod strategy;

#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;

pub use error::{MediaError, Refusal, SdpMediaError, UsageError};
pub use hop::{Failure, HopConfig, HopLink, Input as HopInput, Output as HopOutput};
pub use media::{BodyType, Direction, FileTransfer, LocalMedia, MediaType, MsrpMedia, MsrpSdp, Proto, Setup};
pub use mode::{DeliveryMode, ModeConfig, PAGER_LIMIT};
pub use negotiate::{
    answer_offer, answer_setup, build_offer, cema_applies, check_answer, connect_params, opener, Answer, AnswerCheck,
    Capabilities, ConnectParams, LinkKey, Negotiated, SendIntent, Side,
};
pub use strategy::{AckPolicy, AnswerPolicy, Entity, Figure, Hop, HopPlan, LinkStrategy, Preset, Trigger};
